/** RouteNetwork behaviour shared by every backend, driven through host-gw on a MemoryKernel host. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hostGw } from '../../../src/backend/host-gw/host-gw.ts'
import { formatCidr, formatIp } from '../../../src/ip/ip.ts'
import { MemoryLogger } from '../../../src/log/logger.ts'
import { FakeClock } from '../../../src/util/clock.ts'
import type { MemoryKernel } from '../../../src/kernel/memory/memory-kernel.ts'
import { config, FakeSubnetManager, host, lease, settle, until } from './backend-fixtures.ts'

async function start() {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  const logger = new MemoryLogger()
  const clock = new FakeClock()
  const ac = new AbortController()
  const network = await hostGw({}, { subnetManager: sm, extIface, kernel, logger, clock }).registerNetwork(config(), ac.signal)
  const running = network.run(ac.signal)
  return { kernel, sm, logger, clock, stop: async () => { ac.abort(); await running } }
}

const peerRoutes = async (kernel: MemoryKernel): Promise<string[]> =>
  (await kernel.listRoutes({ family: 4 })).filter((r) => r.gateway).map((r) => `${formatCidr(r.dst)} via ${formatIp(r.gateway!)}`).sort()

test('an overlapping lease is refused until the lease it overlaps is removed', async () => {
  const t = await start()
  const a = lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' })
  const b = lease({ subnet: '10.5.2.0/23', publicIP: '192.168.1.4' })
  t.sm.added(a, b)
  await until(() => t.logger.find('refusing lease').length === 1)
  assert.match(String(t.logger.find('refusing lease')[0]?.fields.reason), /10\.5\.2\.0\/23 overlaps the lease of 10\.5\.2\.0\/24/)
  assert.deepEqual(await peerRoutes(t.kernel), ['10.5.2.0/24 via 192.168.1.3'])
  t.sm.removed(a)
  await until(() => t.logger.find('lease accepted').length === 1)
  assert.deepEqual(await peerRoutes(t.kernel), ['10.5.2.0/23 via 192.168.1.4'])
  await t.stop()
})

test('a programmed lease that turns bad is removed from the kernel and logged once', async () => {
  const t = await start()
  t.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' }))
  await until(() => t.kernel.calls('replaceRoute').length === 1)
  const bad = lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.2' })
  t.sm.added(bad)
  t.sm.added(bad)
  await until(() => t.kernel.calls('deleteRoute').length === 1)
  await settle()
  assert.deepEqual(await peerRoutes(t.kernel), [])
  const refusals = t.logger.find('refusing lease')
  assert.equal(refusals.length, 1)
  assert.match(String(refusals[0]?.fields.reason), /192\.168\.1\.2 is this host's own public IP/)
  await t.stop()
})

test('leases outside the network or overlapping this host are never programmed', async () => {
  const t = await start()
  t.sm.added(lease({ subnet: '10.6.2.0/24', publicIP: '192.168.1.3' }), lease({ subnet: '10.5.1.128/25', publicIP: '192.168.1.4' }))
  await until(() => t.logger.find('refusing lease').length === 2)
  const reasons = t.logger.find('refusing lease').map((e) => String(e.fields.reason))
  assert.ok(reasons.some((r) => /10\.6\.2\.0\/24 is outside the network 10\.5\.0\.0\/16/.test(r)), reasons.join('; '))
  assert.ok(reasons.some((r) => /10\.5\.1\.128\/25 overlaps this host's subnet 10\.5\.1\.0\/24/.test(r)), reasons.join('; '))
  assert.equal(t.kernel.calls('replaceRoute').length, 0)
  await t.stop()
})

test('a route changed by someone (different gateway) is put back', async () => {
  const t = await start()
  t.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' }))
  await until(() => t.kernel.calls('replaceRoute').length === 1)
  await settle()
  const eth0 = (await t.kernel.getLink('eth0'))!
  await t.kernel.replaceRoute({ dst: { family: 4, addr: 0x0a050200n, prefix: 24 }, gateway: { family: 4, value: 0xc0a80109n }, index: eth0.index })
  await until(() => t.kernel.calls('replaceRoute').length === 3)
  await settle()
  assert.deepEqual(await peerRoutes(t.kernel), ['10.5.2.0/24 via 192.168.1.3'])
  await t.stop()
})

test('a snapshot after events converges to exactly the snapshot', async () => {
  const t = await start()
  t.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' }), lease({ subnet: '10.5.3.0/24', publicIP: '192.168.1.4' }))
  await until(() => t.kernel.calls('replaceRoute').length === 2)
  t.sm.snapshot(lease({ subnet: '10.5.3.0/24', publicIP: '192.168.1.4' }))
  await until(() => t.kernel.calls('deleteRoute').length === 1)
  assert.deepEqual(await peerRoutes(t.kernel), ['10.5.3.0/24 via 192.168.1.4'])
  await t.stop()
})

test('a lease watch that fails is restarted with backoff and its snapshot converges', async () => {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  let calls = 0
  const watch = sm.watchLeases.bind(sm)
  sm.watchLeases = (own, signal) => {
    if (own !== undefined && calls++ === 0) {
      return (async function* () {
        yield { kind: 'snapshot' as const, leases: [lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' })] }
        throw new Error('watch broke')
      })()
    }
    return watch(own, signal)
  }
  const logger = new MemoryLogger()
  const clock = new FakeClock()
  const ac = new AbortController()
  const network = await hostGw({}, { subnetManager: sm, extIface, kernel, logger, clock }).registerNetwork(config(), ac.signal)
  const running = network.run(ac.signal)
  await until(() => logger.find('lease watch failed; restarting').length === 1)
  await clock.advance(100)
  await until(() => calls === 2)
  sm.snapshot(lease({ subnet: '10.5.3.0/24', publicIP: '192.168.1.4' }))
  await until(() => kernel.calls('deleteRoute').length === 1)
  assert.deepEqual(await peerRoutes(kernel), ['10.5.3.0/24 via 192.168.1.4'])
  ac.abort()
  await running
})

test('mergeResults: a snapshot supersedes earlier results; event batches are concatenated in order', async () => {
  const { mergeResults } = await import('../../../src/backend/route-network.ts')
  const a = lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' })
  const b = lease({ subnet: '10.5.3.0/24', publicIP: '192.168.1.4' })
  const merged = mergeResults([
    { kind: 'events', events: [{ type: 'added', lease: a }] },
    { kind: 'snapshot', leases: [a] },
    { kind: 'events', events: [{ type: 'added', lease: b }] },
    { kind: 'events', events: [{ type: 'removed', lease: a }] },
  ])
  assert.deepEqual(merged, [
    { kind: 'snapshot', leases: [a] },
    { kind: 'events', events: [{ type: 'added', lease: b }, { type: 'removed', lease: a }] },
  ])
  assert.deepEqual(mergeResults([]), [])
})

test('many one-event batches (kube style) are all programmed', async () => {
  const t = await start()
  for (let n = 2; n < 42; n++) t.sm.added(lease({ subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n + 10}` }))
  await until(() => t.kernel.calls('replaceRoute').length === 40)
  assert.equal(t.logger.find('subnet added').length, 40)
  await t.stop()
})

test('an entry whose deletion failed when its peer left is deleted by the periodic check', async () => {
  const t = await start()
  const peer = lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' })
  t.sm.added(peer)
  await until(() => t.kernel.calls('replaceRoute').length === 1)
  t.kernel.failNext('deleteRoute', 'EBUSY')
  t.sm.removed(peer)
  await until(() => t.kernel.calls('deleteRoute').length === 1)
  await settle()
  assert.deepEqual(await peerRoutes(t.kernel), ['10.5.2.0/24 via 192.168.1.3'])
  await until(() => t.clock.pending > 0)
  await t.clock.advance(10_000)
  await until(() => t.kernel.calls('deleteRoute').length === 2)
  await settle()
  assert.deepEqual(await peerRoutes(t.kernel), [])
  await t.stop()
})
