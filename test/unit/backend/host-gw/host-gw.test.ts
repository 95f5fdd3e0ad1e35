import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hostGw, NAT_MESSAGE } from '../../../../src/backend/host-gw/host-gw.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { formatCidr, formatIp } from '../../../../src/ip/ip.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import type { MemoryKernel } from '../../../../src/kernel/memory/memory-kernel.ts'
import { config, FakeSubnetManager, host, lease, net, settle, until } from '../backend-fixtures.ts'

/** main-table routes that are not connected routes, as `dst via gw dev`. */
async function peerRoutes(kernel: MemoryKernel, family: 4 | 6 = 4): Promise<string[]> {
  const routes = await kernel.listRoutes({ family })
  return routes.filter((r) => r.gateway).map((r) => `${formatCidr(r.dst)} via ${formatIp(r.gateway!)} dev ${r.index}`).sort()
}

async function start(opts: { v6?: boolean; publicIP?: string } = {}) {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24', ...(opts.v6 ? { v6: 'fd00:1::2/64' } : {}), ...(opts.publicIP ? { publicIP: opts.publicIP } : {}) })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24', ...(opts.v6 ? { ipv6Subnet: 'fd10:0:0:1::/64' } : {}) })
  const logger = new MemoryLogger()
  const clock = new FakeClock()
  const backend = hostGw({}, { subnetManager: sm, extIface, kernel, logger, clock })
  const cfg = config(opts.v6 ? { v4: '10.5.0.0/16', v6: 'fd10::/48' } : {})
  const ac = new AbortController()
  return { kernel, extIface, sm, logger, clock, backend, cfg, ac }
}

test('host-gw acquires a lease tagged host-gw with the public IP and no backend data', async () => {
  const h = await start()
  const network = await h.backend.registerNetwork(h.cfg, h.ac.signal)
  assert.equal(network.mtu, 1500)
  assert.deepEqual(h.sm.acquired, [{ publicIP: h.extIface.extAddr, backendType: 'host-gw' }])
})

test('host-gw refuses to start behind NAT with flannel\'s explanation', async () => {
  const h = await start({ publicIP: '203.0.113.7' })
  await assert.rejects(h.backend.registerNetwork(h.cfg, h.ac.signal), (err: unknown) => {
    assert.ok(isWeftError(err, 'BACKEND_UNSUPPORTED'))
    assert.equal((err as Error).message, NAT_MESSAGE)
    return true
  })
  assert.equal(h.sm.acquired.length, 0)
})

test('host-gw programs a route per peer via its public IP and removes it', async () => {
  const h = await start()
  const network = await h.backend.registerNetwork(h.cfg, h.ac.signal)
  const running = network.run(h.ac.signal)
  const before = h.kernel.snapshot()
  const peer = lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' })
  h.sm.added(peer)
  await until(() => h.kernel.calls('replaceRoute').length === 1)
  assert.deepEqual(await peerRoutes(h.kernel), [`10.5.2.0/24 via 192.168.1.3 dev ${h.extIface.index}`])
  h.sm.removed(peer)
  await until(() => h.kernel.calls('deleteRoute').length === 1)
  assert.deepEqual(h.kernel.snapshot().routes, before.routes)
  h.ac.abort()
  await running
})

test('host-gw replaces the route when the peer gateway changes', async () => {
  const h = await start()
  const network = await h.backend.registerNetwork(h.cfg, h.ac.signal)
  const running = network.run(h.ac.signal)
  h.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' }))
  await until(() => h.kernel.calls('replaceRoute').length === 1)
  h.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.4' }))
  await until(() => h.kernel.calls('replaceRoute').length === 2)
  await settle()
  assert.deepEqual(await peerRoutes(h.kernel), [`10.5.2.0/24 via 192.168.1.4 dev ${h.extIface.index}`])
  h.ac.abort()
  await running
})

test('host-gw refuses a peer that is not on-link and says host-gw needs L2 adjacency', async () => {
  const h = await start()
  // A default route via a router: the peer 172.16.0.9 is reachable, but not on-link.
  await h.kernel.replaceRoute({ dst: net('0.0.0.0/0'), gateway: { family: 4, value: 0xc0a80101n }, index: h.extIface.index })
  const network = await h.backend.registerNetwork(h.cfg, h.ac.signal)
  const running = network.run(h.ac.signal)
  h.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '172.16.0.9' }))
  h.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '172.16.0.9' }))
  await until(() => h.logger.find('refusing lease').length === 1)
  await settle()
  const [entry] = h.logger.find('refusing lease')
  assert.match(String(entry?.fields.reason), /peer public IP 172\.16\.0\.9 is not on-link on eth0 .*ENETUNREACH.*one L2 network/)
  assert.equal(h.logger.find('refusing lease').length, 1, 'logged once')
  assert.deepEqual(await peerRoutes(h.kernel), [`0.0.0.0/0 via 192.168.1.1 dev ${h.extIface.index}`], 'no route for the refused peer')
  assert.ok(h.kernel.calls('replaceRoute').some((c) => c.errno === 'ENETUNREACH'))
  h.ac.abort()
  await running
})

test('host-gw ignores leases of another backend type with a warning', async () => {
  const h = await start()
  const network = await h.backend.registerNetwork(h.cfg, h.ac.signal)
  const running = network.run(h.ac.signal)
  h.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', type: 'vxlan' }))
  await until(() => h.logger.find('ignoring non-host-gw subnet').length === 1)
  assert.equal(h.kernel.calls('replaceRoute').length, 0)
  h.ac.abort()
  await running
})

test('host-gw periodic check restores a deleted route even without notifications', async () => {
  const h = await start()
  const network = await h.backend.registerNetwork(h.cfg, h.ac.signal)
  const running = network.run(h.ac.signal)
  h.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' }))
  await until(() => h.kernel.calls('replaceRoute').length === 1)
  h.ac.abort()
  await running
  // Second run without a subscription: only the 10 s check can notice.
  const ac = new AbortController()
  h.kernel.failNext('subscribe', 'EPERM')
  const again = network.run(ac.signal)
  await settle()
  await h.kernel.deleteRoute({ dst: net('10.5.2.0/24') })
  await settle()
  assert.deepEqual(await peerRoutes(h.kernel), [])
  await until(() => h.clock.pending > 0)
  await h.clock.advance(10_000)
  await until(() => h.kernel.calls('replaceRoute').length === 2)
  assert.deepEqual(await peerRoutes(h.kernel), [`10.5.2.0/24 via 192.168.1.3 dev ${h.extIface.index}`])
  ac.abort()
  await again
})

test('host-gw re-asserts a route deleted by someone else from the notification', async () => {
  const h = await start()
  const network = await h.backend.registerNetwork(h.cfg, h.ac.signal)
  const running = network.run(h.ac.signal)
  h.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' }))
  await until(() => h.kernel.calls('replaceRoute').length === 1)
  await settle()
  const t0 = Date.now()
  await h.kernel.deleteRoute({ dst: net('10.5.2.0/24') })
  await until(() => h.kernel.calls('replaceRoute').length === 2, 1000)
  assert.ok(Date.now() - t0 < 1000)
  await settle()
  assert.deepEqual(await peerRoutes(h.kernel), [`10.5.2.0/24 via 192.168.1.3 dev ${h.extIface.index}`])
  await settle(5)
  assert.equal(h.kernel.calls('replaceRoute').length, 2, 'no re-assert loop')
  h.ac.abort()
  await running
})

test('host-gw dual stack programs one route per family', async () => {
  const h = await start({ v6: true })
  const network = await h.backend.registerNetwork(h.cfg, h.ac.signal)
  const running = network.run(h.ac.signal)
  h.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', ipv6Subnet: 'fd10:0:0:2::/64', publicIPv6: 'fd00:1::3' }))
  await until(() => h.kernel.calls('replaceRoute').length === 2)
  assert.deepEqual(await peerRoutes(h.kernel, 4), [`10.5.2.0/24 via 192.168.1.3 dev ${h.extIface.index}`])
  assert.deepEqual(await peerRoutes(h.kernel, 6), [`fd10:0:0:2::/64 via fd00:1::3 dev ${h.extIface.index}`])
  h.ac.abort()
  await running
})

test('host-gw IPv6-only programs IPv6 routes and checks NAT on the IPv6 address', async () => {
  const { kernel, extIface } = await host({ v6: 'fd00:1::2/64' })
  const sm = new FakeSubnetManager({ ipv6Subnet: 'fd10:0:0:1::/64' })
  const ac = new AbortController()
  const deps = { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() }
  const network = await hostGw({}, deps).registerNetwork(config({ v6: 'fd10::/48' }), ac.signal)
  assert.deepEqual(sm.acquired, [{ publicIPv6: extIface.extV6Addr, backendType: 'host-gw' }])
  const running = network.run(ac.signal)
  sm.added(lease({ ipv6Subnet: 'fd10:0:0:2::/64', publicIPv6: 'fd00:1::3' }))
  await until(() => kernel.calls('replaceRoute').length === 1)
  assert.deepEqual(await peerRoutes(kernel, 6), [`fd10:0:0:2::/64 via fd00:1::3 dev ${extIface.index}`])
  ac.abort()
  await running
  const natted = await host({ v6: 'fd00:1::2/64', publicIPv6: '2001:db8::7' })
  await assert.rejects(hostGw({}, { ...deps, extIface: natted.extIface, kernel: natted.kernel }).registerNetwork(config({ v6: 'fd10::/48' }), ac.signal), new RegExp(NAT_MESSAGE.replace(/[()]/g, '.')))
})
