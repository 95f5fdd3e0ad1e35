/** The hand-written text exposition: HELP/TYPE, escaping, cumulative buckets, scrape-time gauges. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Counter, Gauge, Histogram, Registry } from '../../../src/metrics/exposition.ts'
import { WeftMetrics } from '../../../src/metrics/weft-metrics.ts'
import { instrumentKernel } from '../../../src/metrics/kernel-metrics.ts'
import { MemoryKernel } from '../../../src/kernel/memory/memory-kernel.ts'
import { parseCidr } from '../../../src/ip/ip.ts'

test('counters and gauges render HELP, TYPE and escaped labels', () => {
  const r = new Registry()
  const c = r.register(new Counter('x_events_total', 'Events with a \\ backslash\nand a newline.', ['kind']))
  c.inc(['a"b\\c\nd'])
  c.inc(['plain'], 2)
  const g = r.register(new Gauge('x_level', 'A level.'))
  g.set([], 1.5)
  assert.equal(r.render(), [
    '# HELP x_events_total Events with a \\\\ backslash\\nand a newline.',
    '# TYPE x_events_total counter',
    'x_events_total{kind="a\\"b\\\\c\\nd"} 1',
    'x_events_total{kind="plain"} 2',
    '# HELP x_level A level.',
    '# TYPE x_level gauge',
    'x_level 1.5',
    '',
  ].join('\n'))
  assert.throws(() => new Counter('x_events', 'no suffix'), /must end in _total/)
  assert.throws(() => c.inc([]), /expected labels kind/)
})

test('histogram buckets are cumulative with +Inf, _sum and _count', () => {
  const r = new Registry()
  const h = r.register(new Histogram('x_duration_seconds', 'Durations.', ['op'], [0.1, 1]))
  for (const v of [0.05, 0.5, 0.7, 3]) h.observe(['get'], v)
  const text = r.render()
  assert.match(text, /x_duration_seconds_bucket\{op="get",le="0.1"\} 1\n/)
  assert.match(text, /x_duration_seconds_bucket\{op="get",le="1"\} 3\n/)
  assert.match(text, /x_duration_seconds_bucket\{op="get",le="\+Inf"\} 4\n/)
  assert.match(text, /x_duration_seconds_sum\{op="get"\} 4.25\n/)
  assert.match(text, /x_duration_seconds_count\{op="get"\} 4\n/)
})

test('scrape-time gauges read their source; undefined leaves the series out', () => {
  const r = new Registry()
  const g = r.register(new Gauge('x_peers', 'Peers.', ['backend']))
  let n: number | undefined = 3
  g.observe(['vxlan'], () => n)
  assert.match(r.render(), /x_peers\{backend="vxlan"\} 3\n/)
  n = undefined
  assert.doesNotMatch(r.render(), /x_peers\{/)
})

test('WeftMetrics: every family, process metrics, lease expiry in seconds, udp counters', () => {
  const m = new WeftMetrics({ version: 'v1.2.3', backend: 'unknown', store: 'etcd' }, 1000)
  m.setBackend({ version: 'v1.2.3', backend: 'udp', store: 'etcd' })
  m.leaseExpiration(1_700_000_000_500)
  m.leaseRenewal('ok')
  m.storeRequest('etcd', 'kv_range', 'ok', 0.002)
  m.watchRestart('etcd', 'compacted')
  m.kernelRepairs('route', 2)
  m.reconcile(0.01)
  m.observePeers('udp', () => 2)
  m.observeUdp(() => ({ txPackets: 5, rxPackets: 7, drops: { noRoute: 1, ttl: 0 } }))
  const text = m.render()
  assert.match(text, /weft_build_info\{version="v1.2.3",backend="udp",store="etcd"\} 1\n/)
  assert.doesNotMatch(text, /backend="unknown"/)
  assert.match(text, /weft_lease_expiration_timestamp_seconds 1700000000.5\n/)
  assert.match(text, /weft_lease_renewals_total\{result="ok"\} 1\n/)
  assert.match(text, /weft_lease_renewals_total\{result="error"\} 0\n/)
  assert.match(text, /weft_store_requests_total\{store="etcd",op="kv_range",result="ok"\} 1\n/)
  assert.match(text, /weft_store_request_duration_seconds_count\{store="etcd",op="kv_range"\} 1\n/)
  assert.match(text, /weft_store_watch_restarts_total\{store="etcd",reason="compacted"\} 1\n/)
  assert.match(text, /weft_kernel_repairs_total\{object="route"\} 2\n/)
  assert.match(text, /weft_reconcile_duration_seconds_count 1\n/)
  assert.match(text, /weft_peers\{backend="udp"\} 2\n/)
  assert.match(text, /weft_udp_packets_total\{direction="tx"\} 5\n/)
  assert.match(text, /weft_udp_dropped_packets_total\{reason="noRoute"\} 1\n/)
  assert.match(text, /process_start_time_seconds 1000\n/)
  for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_open_fds', 'process_max_fds']) {
    assert.match(text, new RegExp(`^${name} \\d`, 'm'), name)
  }
  assert.equal(m.summary().kernelRepairs, 2)
  m.leaseExpiration(undefined)
  assert.doesNotMatch(m.render(), /^weft_lease_expiration_timestamp_seconds /m)
})

test('instrumentKernel counts operations by object, op and result and forwards the values', async () => {
  const m = new WeftMetrics({ version: 'v0', backend: 'host-gw', store: 'etcd' })
  const kernel = instrumentKernel(new MemoryKernel(), m)
  const tun = await kernel.openTun({ name: 'eth0' })
  await kernel.setLink(tun.index, { up: true })
  await kernel.replaceRoute({ dst: parseCidr('10.5.3.0/24')!, index: tun.index })
  await assert.rejects(kernel.deleteRoute({ dst: parseCidr('10.9.0.0/24')!, index: tun.index }))
  assert.equal((await kernel.listRoutes({ family: 4 })).length, 1)
  const text = m.render()
  assert.match(text, /weft_kernel_operations_total\{object="route",op="replace",result="ok"\} 1\n/)
  assert.match(text, /weft_kernel_operations_total\{object="route",op="delete",result="error"\} 1\n/)
  assert.match(text, /weft_kernel_operations_total\{object="route",op="list",result="ok"\} 1\n/)
  assert.match(text, /weft_kernel_operations_total\{object="tun",op="open",result="ok"\} 1\n/)
  assert.match(text, /weft_kernel_operations_total\{object="link",op="set",result="ok"\} 1\n/)
})
