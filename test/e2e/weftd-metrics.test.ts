/**
 * weftd --metrics-addr in a 3-host cluster with etcd: promtool accepts /metrics, the issue's
 * families are present, weft_peers equals the number of other hosts, and the healthz port
 * serves the same text at /metrics and the daemon's state at /status.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { eventually, fetchIn, startCluster } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : spawnSync('promtool', ['--version']).error ? 'promtool missing (Debian package prometheus; scripts/setup.sh installs it)' : false

const FAMILIES = [
  'weft_build_info', 'weft_lease_expiration_timestamp_seconds', 'weft_lease_renewals_total', 'weft_peers',
  'weft_reconcile_duration_seconds', 'weft_kernel_operations_total', 'weft_kernel_repairs_total',
  'weft_store_requests_total', 'weft_store_request_duration_seconds', 'weft_store_watch_restarts_total',
  'weft_udp_packets_total', 'weft_udp_dropped_packets_total',
  'process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_start_time_seconds', 'process_open_fds',
]

test('promtool accepts /metrics of a running weftd; weft_peers counts the other hosts', { skip, timeout: 120_000 }, async () => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } })
    await startCluster(bed, ['--metrics-addr=9102', '--healthz-ip=127.0.0.1', '--healthz-port=8472'])
    const host = bed.hosts[0] as TestHost
    const scrape = await eventually('weft_peers 2 on h1', async () => {
      const r = await fetchIn(host, 'http://127.0.0.1:9102/metrics')
      return /^weft_peers\{backend="vxlan"\} 2$/m.test(r.body) && r
    }, 20_000)
    assert.equal(scrape.status, 200)
    assert.equal(scrape.type, 'text/plain; version=0.0.4; charset=utf-8')
    const check = spawnSync('promtool', ['check', 'metrics'], { input: scrape.body, encoding: 'utf8' })
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`)
    assert.equal(check.stdout + check.stderr, '', 'no lint findings')
    for (const family of FAMILIES) assert.match(scrape.body, new RegExp(`^# TYPE ${family} `, 'm'), family)
    assert.match(scrape.body, /^weft_build_info\{version="v[\d.]+",backend="vxlan",store="etcd"\} 1$/m)
    assert.match(scrape.body, /^weft_store_requests_total\{store="etcd",op="kv_txn",result="ok"\} [1-9]/m)
    assert.match(scrape.body, /^weft_kernel_operations_total\{object="route",op="replace",result="ok"\} [2-9]/m)
    const expiry = Number(/^weft_lease_expiration_timestamp_seconds (\S+)$/m.exec(scrape.body)?.[1])
    assert.ok(expiry > Date.now() / 1000 + 23 * 3600, `the lease expires in about 24 h (got ${expiry})`)

    // The same families on the healthz port, and the daemon's state at /status.
    const onHealth = await fetchIn(host, 'http://127.0.0.1:8472/metrics')
    assert.equal(onHealth.status, 200)
    assert.match(onHealth.body, /^weft_peers\{backend="vxlan"\} 2$/m)
    const status = JSON.parse((await fetchIn(host, 'http://127.0.0.1:8472/status')).body) as Record<string, unknown>
    assert.equal(status.ready, true)
    assert.equal(status.backend, 'vxlan')
    assert.equal(status.network, '10.5.0.0/16')
    assert.equal((status.counters as Record<string, number>).kernelOperationErrors, 0)

    // Metrics listen on loopback only when given a bare port: not on the underlay address.
    const outside = await host.run([process.execPath, '-e', `fetch('http://${host.underlayIp}:9102/metrics').then(() => console.log('open'), () => console.log('closed'))`])
    assert.equal(outside.stdout.trim(), 'closed')
  } finally {
    await bed.destroy()
  }
})
