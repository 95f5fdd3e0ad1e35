import { test } from 'node:test'
import assert from 'node:assert/strict'
import { vxlan } from '../../../../src/backend/vxlan/vxlan.ts'
import type { VxlanOptions } from '../../../../src/backend/vxlan/vxlan-options.ts'
import { formatCidr, formatIp } from '../../../../src/ip/ip.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import type { MemoryKernel } from '../../../../src/kernel/memory/memory-kernel.ts'
import type { Lease } from '../../../../src/lease/lease.ts'
import { config, FakeSubnetManager, host, ip, lease, settle, until, type HostOptions } from '../backend-fixtures.ts'

const defaults: VxlanOptions = { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 0 }
const MAC_B = '0e:00:00:00:00:0b'
const MAC_C = '0e:00:00:00:00:0c'

function peer(n: number, opts: { mac?: string; vni?: number; publicIP?: string; v6?: boolean } = {}): Lease {
  const data = { VNI: opts.vni ?? 1, VtepMAC: opts.mac ?? `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}` }
  return lease({
    type: 'vxlan', subnet: `10.5.${n}.0/24`, publicIP: opts.publicIP ?? `192.168.1.${n}`, data,
    ...(opts.v6 ? { ipv6Subnet: `fd10:0:0:${n}::/64`, publicIPv6: `fd00:1::${n}`, v6data: { ...data, VtepMAC: `0e:00:00:00:06:${n.toString(16).padStart(2, '0')}` } } : {}),
  })
}

interface Setup {
  options?: Partial<VxlanOptions>
  host?: HostOptions
  v6?: boolean
  previous?: Lease[]
}

async function setup(s: Setup = {}, existing?: { kernel: MemoryKernel; extIface: import('../../../../src/backend/backend.ts').ExternalInterface }) {
  const h = existing ?? (await host(s.host ?? { v4: '192.168.1.2/24', ...(s.v6 ? { v6: 'fd00:1::2/64' } : {}) }))
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24', ...(s.v6 ? { ipv6Subnet: 'fd10:0:0:1::/64' } : {}) }, s.previous ?? [])
  const logger = new MemoryLogger()
  const clock = new FakeClock()
  const backend = vxlan({ ...defaults, ...s.options }, { subnetManager: sm, extIface: h.extIface, kernel: h.kernel, logger, clock })
  const cfg = config(s.v6 ? { v4: '10.5.0.0/16', v6: 'fd10::/48', type: 'vxlan' } : { type: 'vxlan' })
  const ac = new AbortController()
  const network = await backend.registerNetwork(cfg, ac.signal)
  return { ...h, sm, logger, clock, backend, cfg, ac, network }
}

const opNames = (kernel: MemoryKernel, from = 0): string[] =>
  kernel.ops.slice(from).filter((o) => /Neigh|Fdb|Route$/.test(o.op) && o.op !== 'listRoutes').map((o) => (o.errno ? `${o.op}!${o.errno}` : o.op))

test('vxlan creates flannel.<VNI> with the options and publishes VNI and VtepMAC', async () => {
  const t = await setup({ options: { vni: 42, port: 4789, gbp: true, learning: true } })
  const [create] = t.kernel.calls('createVxlan')
  const spec = create?.args[0] as Record<string, unknown>
  assert.equal(spec.name, 'flannel.42')
  assert.equal(spec.vni, 42)
  assert.equal(spec.port, 4789)
  assert.equal(spec.gbp, true)
  assert.equal(spec.learning, true)
  assert.equal(spec.parentIndex, t.extIface.index)
  assert.equal(formatIp(spec.local as never), '192.168.1.2')
  const link = await t.kernel.getLink('flannel.42')
  assert.ok(link?.up)
  assert.equal(link?.mtu, 1450)
  assert.equal(t.network.mtu, 1450)
  assert.deepEqual(t.sm.acquired[0]?.backendData, { VNI: 42, VtepMAC: link?.mac })
  assert.equal(t.sm.acquired[0]?.backendType, 'vxlan')
  assert.match(link?.mac ?? '', /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, 'locally administered unicast')
  const addrs = await t.kernel.listAddrs(4, link?.index)
  assert.deepEqual(addrs.map((a) => `${formatIp(a.ip)}/${a.prefix}`), ['10.5.1.0/32'])
  assert.equal(t.kernel.snapshot().sysctls['net/ipv6/conf/flannel.42/accept_ra'], '0')
})

test('vxlan MTU: Backend.MTU − 50 for IPv4, − 70 for an IPv6 underlay; FLANNEL_MTU is the smallest', async () => {
  const t = await setup({ options: { mtu: 9000 }, v6: true })
  assert.equal((await t.kernel.getLink('flannel.1'))?.mtu, 8950)
  assert.equal((await t.kernel.getLink('flannel-v6.1'))?.mtu, 8930)
  assert.equal(t.network.mtu, 8930)
  const u = await setup({ host: { v4: '192.168.1.2/24', mtu: 1400 } })
  assert.equal(u.network.mtu, 1350)
})

test('vxlan keeps the MAC of a compatible existing device across a restart', async () => {
  const first = await setup()
  const mac = (await first.kernel.getLink('flannel.1'))?.mac
  const second = await setup({}, first)
  assert.equal(first.kernel.calls('createVxlan').length, 1, 'device reused')
  assert.equal((second.sm.acquired[0]?.backendData as { VtepMAC: string }).VtepMAC, mac)
})

test('vxlan reuses the MAC of its previous lease when the device is gone', async () => {
  const previous = lease({ type: 'vxlan', subnet: '10.5.1.0/24', publicIP: '192.168.1.2', data: { VNI: 1, VtepMAC: '0a:bb:cc:dd:ee:01' } })
  const t = await setup({ previous: [previous] })
  assert.equal((await t.kernel.getLink('flannel.1'))?.mac, '0a:bb:cc:dd:ee:01')
})

test('vxlan recreates an incompatible existing device', async () => {
  const first = await setup({ options: { port: 4789 } })
  const oldIndex = (await first.kernel.getLink('flannel.1'))?.index
  const second = await setup({ options: { port: 8472 } }, first)
  assert.equal(first.kernel.calls('deleteLink').length, 1)
  assert.equal(second.logger.find('device already exists with incompatible configuration; recreating it').length, 1)
  const link = await first.kernel.getLink('flannel.1')
  assert.notEqual(link?.index, oldIndex)
  assert.equal(link?.vxlan?.port, 8472)
})

test('vxlan programs neighbour, FDB, then route per peer, and removal deletes exactly that', async () => {
  const t = await setup()
  const running = t.network.run(t.ac.signal)
  const before = t.kernel.snapshot()
  const from = t.kernel.ops.length
  t.sm.added(peer(3))
  await until(() => t.kernel.calls('replaceRoute').length === 1)
  assert.deepEqual(opNames(t.kernel, from), ['replaceNeigh', 'replaceFdb', 'replaceRoute'])
  const dev = (await t.kernel.getLink('flannel.1'))!
  const snap = t.kernel.snapshot()
  assert.deepEqual(snap.neighs.filter((n) => n.index === dev.index).map((n) => `${formatIp(n.ip)} ${n.mac} ${n.state}`), ['10.5.3.0 0e:00:00:00:00:03 permanent'])
  assert.deepEqual(snap.fdb.map((f) => `${f.mac} ${formatIp(f.dst!)}`), ['0e:00:00:00:00:03 192.168.1.3'])
  const route = snap.routes.find((r) => formatCidr(r.dst) === '10.5.3.0/24')
  assert.equal(formatIp(route!.gateway!), '10.5.3.0')
  assert.equal(route!.index, dev.index)
  assert.equal(route!.onlink, true)
  t.sm.removed(peer(3))
  await until(() => t.kernel.calls('deleteRoute').length === 1)
  await settle()
  assert.deepEqual(t.kernel.snapshot(), before)
  t.ac.abort()
  await running
})

test('vxlan rolls back the neighbour when the FDB entry fails, and retries on the periodic check', async () => {
  const t = await setup()
  const running = t.network.run(t.ac.signal)
  const before = t.kernel.snapshot()
  const from = t.kernel.ops.length
  t.kernel.failNext('replaceFdb', 'EBUSY')
  t.sm.added(peer(3))
  await until(() => t.kernel.calls('deleteNeigh').length === 1)
  await settle()
  assert.deepEqual(opNames(t.kernel, from), ['replaceNeigh', 'replaceFdb!EBUSY', 'deleteNeigh'])
  assert.deepEqual(t.kernel.snapshot(), before)
  await until(() => t.clock.pending > 0)
  await t.clock.advance(10_000)
  await until(() => t.kernel.calls('replaceRoute').length === 1)
  t.ac.abort()
  await running
})

test('vxlan periodic check leaves intact peers alone and puts back a neighbour changed without a notification', async () => {
  const t = await setup()
  t.kernel.failNext('subscribe', 'EPERM') // only the check can notice
  const running = t.network.run(t.ac.signal)
  t.sm.added(peer(3))
  t.sm.added(peer(4))
  await until(() => t.kernel.calls('replaceRoute').length === 2)
  await settle()
  const writes = (from: number): string[] => t.kernel.ops.slice(from).filter((o) => /^(replace|delete)/.test(o.op)).map((o) => o.op)
  await until(() => t.clock.pending > 0)
  let from = t.kernel.ops.length
  await t.clock.advance(10_000)
  await until(() => t.kernel.calls('listFdb').length > 0)
  await settle()
  assert.deepEqual(writes(from), [], 'nothing re-programmed when every entry is intact')
  const dev = await t.kernel.getLink('flannel.1')
  assert.ok(dev)
  await t.kernel.replaceNeigh({ index: dev.index, ip: ip('10.5.3.0'), mac: '0e:00:00:00:00:99', state: 'permanent' })
  from = t.kernel.ops.length
  await until(() => t.clock.pending > 0)
  await t.clock.advance(10_000)
  await until(() => writes(from).includes('replaceNeigh'))
  await settle()
  const neighs = await t.kernel.listNeighs(4, dev.index)
  assert.deepEqual(neighs.map((n) => `${formatIp(n.ip)} ${n.mac}`).sort(), ['10.5.3.0 0e:00:00:00:00:03', '10.5.4.0 0e:00:00:00:00:04'])
  t.ac.abort()
  await running
})

test('vxlan rolls back neighbour and FDB when the route fails', async () => {
  const t = await setup()
  const running = t.network.run(t.ac.signal)
  const before = t.kernel.snapshot()
  const from = t.kernel.ops.length
  t.kernel.failNext('replaceRoute', 'ENOMEM')
  t.sm.added(peer(3))
  await until(() => t.kernel.calls('deleteNeigh').length === 1)
  await settle()
  assert.deepEqual(opNames(t.kernel, from), ['replaceNeigh', 'replaceFdb', 'replaceRoute!ENOMEM', 'deleteFdb', 'deleteNeigh'])
  assert.deepEqual(t.kernel.snapshot(), before)
  assert.equal(t.logger.find('failed to program peer; will retry').length, 1)
  t.ac.abort()
  await running
})

test('vxlan recreates a deleted device with the same MAC and replays every peer', async () => {
  const t = await setup()
  const running = t.network.run(t.ac.signal)
  t.sm.added(peer(3), peer(4))
  await until(() => t.kernel.calls('replaceRoute').length === 2)
  const old = (await t.kernel.getLink('flannel.1'))!
  await t.kernel.deleteLink(old.index)
  await until(() => t.kernel.calls('createVxlan').length === 2)
  await until(() => t.kernel.snapshot().routes.filter((r) => r.gateway && r.dst.prefix === 24).length === 2)
  await settle()
  const dev = (await t.kernel.getLink('flannel.1'))!
  assert.equal(dev.mac, old.mac)
  assert.ok(dev.up)
  const snap = t.kernel.snapshot()
  assert.equal(snap.neighs.filter((n) => n.index === dev.index).length, 2)
  assert.equal(snap.fdb.filter((f) => f.index === dev.index).length, 2)
  assert.deepEqual(snap.addrs.filter((a) => a.index === dev.index).map((a) => formatIp(a.ip)), ['10.5.1.0'])
  t.ac.abort()
  await running
})

test('vxlan DirectRouting: a peer on the same L2 subnet gets a plain route, others VXLAN', async () => {
  const t = await setup({ options: { directRouting: true } })
  // 172.16.0.0/16 is behind a router: not on-link.
  await t.kernel.replaceRoute({ dst: { family: 4, addr: 0xac100000n, prefix: 16 }, gateway: { family: 4, value: 0xc0a80101n }, index: t.extIface.index })
  const running = t.network.run(t.ac.signal)
  t.sm.added(peer(3), peer(4, { publicIP: '172.16.0.4' }))
  await until(() => t.kernel.calls('replaceRoute').length === 3)
  const snap = t.kernel.snapshot()
  const r3 = snap.routes.find((r) => formatCidr(r.dst) === '10.5.3.0/24')!
  assert.equal(formatIp(r3.gateway!), '192.168.1.3')
  assert.equal(r3.index, t.extIface.index)
  const r4 = snap.routes.find((r) => formatCidr(r.dst) === '10.5.4.0/24')!
  assert.equal(formatIp(r4.gateway!), '10.5.4.0')
  assert.deepEqual(snap.fdb.map((f) => f.mac), ['0e:00:00:00:00:04'])
  t.ac.abort()
  await running
})

test('vxlan dual stack programs both devices', async () => {
  const t = await setup({ v6: true })
  const running = t.network.run(t.ac.signal)
  t.sm.added(peer(3, { v6: true }))
  await until(() => t.kernel.calls('replaceRoute').length === 2)
  const v6dev = (await t.kernel.getLink('flannel-v6.1'))!
  assert.equal(v6dev.vxlan?.local && formatIp(v6dev.vxlan.local), 'fd00:1::2')
  const snap = t.kernel.snapshot()
  assert.deepEqual(snap.fdb.filter((f) => f.index === v6dev.index).map((f) => `${f.mac} ${formatIp(f.dst!)}`), ['0e:00:00:00:06:03 fd00:1::3'])
  const r6 = snap.routes.find((r) => formatCidr(r.dst) === 'fd10:0:0:3::/64')!
  assert.equal(formatIp(r6.gateway!), 'fd10:0:0:3::')
  assert.equal(r6.index, v6dev.index)
  assert.deepEqual((t.sm.acquired[0]?.backendV6Data as { VtepMAC: string }).VtepMAC, v6dev.mac)
  t.ac.abort()
  await running
})

test('vxlan refuses a VNI mismatch and a malformed VtepMAC, logging each once', async () => {
  const t = await setup()
  const running = t.network.run(t.ac.signal)
  t.sm.added(peer(3, { vni: 2 }), peer(4, { mac: 'zz:00' }))
  t.sm.added(peer(3, { vni: 2 }), peer(4, { mac: 'zz:00' }))
  await until(() => t.logger.find('refusing lease').length === 2)
  await settle()
  const reasons = t.logger.find('refusing lease').map((e) => String(e.fields.reason)).sort()
  assert.match(reasons[0] ?? '', /VNI 2 does not match this network's VNI 1/)
  assert.match(reasons[1] ?? '', /VtepMAC must be a unicast MAC address/)
  assert.equal(t.kernel.calls('replaceNeigh').length, 0)
  t.ac.abort()
  await running
})

test('vxlan: a peer changing its VTEP MAC gets new entries and the stale ones are deleted', async () => {
  const t = await setup()
  const running = t.network.run(t.ac.signal)
  t.sm.added(peer(3, { mac: MAC_B }))
  await until(() => t.kernel.calls('replaceRoute').length === 1)
  t.sm.added(peer(3, { mac: MAC_C }))
  await until(() => t.kernel.calls('deleteFdb').length === 1)
  await settle()
  const snap = t.kernel.snapshot()
  assert.deepEqual(snap.fdb.map((f) => f.mac), [MAC_C])
  assert.deepEqual(snap.neighs.filter((n) => n.mac === MAC_B), [])
  t.ac.abort()
  await running
})

test('vxlan removes stray in-network addresses from a reused device and keeps others', async () => {
  const first = await setup()
  const dev = (await first.kernel.getLink('flannel.1'))!
  await first.kernel.replaceAddr({ index: dev.index, ip: { family: 4, value: 0x0a050900n }, prefix: 32 })
  await first.kernel.replaceAddr({ index: dev.index, ip: { family: 4, value: 0xac100001n }, prefix: 32 })
  await setup({}, first)
  const addrs = (await first.kernel.listAddrs(4, dev.index)).map((a) => formatIp(a.ip)).sort()
  assert.deepEqual(addrs, ['10.5.1.0', '172.16.0.1'])
})

test('vxlan refuses to start without a public address in an enabled family', async () => {
  const h = await host({ v4: '192.168.1.2/24' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24', ipv6Subnet: 'fd10:0:0:1::/64' })
  const backend = vxlan(defaults, { subnetManager: sm, extIface: h.extIface, kernel: h.kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  await assert.rejects(backend.registerNetwork(config({ v4: '10.5.0.0/16', v6: 'fd10::/48', type: 'vxlan' }), new AbortController().signal), /no IPv6 public address on eth0 for flannel-v6\.1/)
  assert.equal(sm.acquired.length, 0)
})

test('vxlan brings a device set down by someone back up and replays its peers', async () => {
  const t = await setup()
  const running = t.network.run(t.ac.signal)
  t.sm.added(peer(3))
  await until(() => t.kernel.calls('replaceRoute').length === 1)
  const dev = (await t.kernel.getLink('flannel.1'))!
  await t.kernel.setLink(dev.index, { up: false })
  await until(() => t.kernel.calls('replaceRoute').length >= 2)
  await settle()
  assert.ok((await t.kernel.getLink('flannel.1'))?.up)
  const snap = t.kernel.snapshot()
  assert.equal(snap.routes.filter((r) => r.index === dev.index && r.gateway).length, 1)
  assert.equal(snap.neighs.filter((n) => n.index === dev.index).length, 1)
  t.ac.abort()
  await running
})

test('vxlan puts back a VTEP MAC rewritten when the link comes up (systemd MACAddressPolicy, flannel #1795)', async () => {
  const h = await host({ v4: '192.168.1.2/24' })
  const real = h.kernel
  let rewrites = 0
  // A udev-like actor: the first time the device goes up, its MAC is replaced.
  const kernel = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'setLink') {
        return async (index: number, change: { up?: boolean; mac?: string; mtu?: number }) => {
          await target.setLink(index, change)
          if (change.up && rewrites++ === 0) await target.setLink(index, { mac: '0a:00:00:00:00:99' })
        }
      }
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  const backend = vxlan(defaults, { subnetManager: sm, extIface: h.extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  await backend.registerNetwork(config({ type: 'vxlan' }), new AbortController().signal)
  const published = (sm.acquired[0]?.backendData as { VtepMAC: string }).VtepMAC
  assert.equal(rewrites, 1)
  assert.equal((await real.getLink('flannel.1'))?.mac, published)
})

test('vxlan IPv6-only: only flannel-v6.<VNI>, BackendV6Data, peers keyed by their IPv6 subnet', async () => {
  const h = await host({ v6: 'fd00:1::2/64' })
  const sm = new FakeSubnetManager({ ipv6Subnet: 'fd10:0:0:1::/64' })
  const ac = new AbortController()
  const backend = vxlan(defaults, { subnetManager: sm, extIface: h.extIface, kernel: h.kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  const network = await backend.registerNetwork(config({ v6: 'fd10::/48', type: 'vxlan' }), ac.signal)
  assert.equal(await h.kernel.getLink('flannel.1'), undefined)
  const dev = (await h.kernel.getLink('flannel-v6.1'))!
  assert.equal(network.mtu, 1430)
  assert.equal(sm.acquired[0]?.publicIP, undefined)
  assert.deepEqual(sm.acquired[0]?.backendV6Data, { VNI: 1, VtepMAC: dev.mac })
  const running = network.run(ac.signal)
  sm.added(lease({ type: 'vxlan', ipv6Subnet: 'fd10:0:0:3::/64', publicIPv6: 'fd00:1::3', v6data: { VNI: 1, VtepMAC: MAC_B } }))
  await until(() => h.kernel.calls('replaceRoute').length === 1)
  const route = (await h.kernel.listRoutes({ family: 6 })).find((r) => formatCidr(r.dst) === 'fd10:0:0:3::/64')
  assert.equal(route?.index, dev.index)
  ac.abort()
  await running
})

test('vxlan refuses an underlay MTU that leaves IPv6 pods below 1280', async () => {
  const h = await host({ v4: '192.168.1.2/24', v6: 'fd00:1::2/64', mtu: 1340 })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24', ipv6Subnet: 'fd10:0:0:1::/64' })
  const backend = vxlan(defaults, { subnetManager: sm, extIface: h.extIface, kernel: h.kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  await assert.rejects(backend.registerNetwork(config({ v4: '10.5.0.0/16', v6: 'fd10::/48', type: 'vxlan' }), new AbortController().signal),
    /^ConfigError: Backend\.MTU: the underlay MTU 1340 leaves 1270 for IPv6 pods, below the 1280 minimum$/)
  assert.equal(h.kernel.calls('createVxlan').length, 0)
})

test('vxlan lists the store for a previous MAC only when it has to create a device', async () => {
  const first = await setup()
  assert.equal(first.sm.listCalls, 1, 'device created: one listing')
  const second = await setup({}, first)
  assert.equal(second.sm.listCalls, 0, 'compatible device reused: no listing')
})

test('vxlan refuses a VNI whose device name would exceed 15 characters', async () => {
  const h = await host({ v4: '192.168.1.2/24', v6: 'fd00:1::2/64' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24', ipv6Subnet: 'fd10:0:0:1::/64' })
  const backend = vxlan({ ...defaults, vni: 10_000 }, { subnetManager: sm, extIface: h.extIface, kernel: h.kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  await assert.rejects(backend.registerNetwork(config({ v4: '10.5.0.0/16', v6: 'fd10::/48', type: 'vxlan' }), new AbortController().signal),
    /Backend\.VNI: the device name flannel-v6\.10000 is longer than the 15 characters Linux allows; use a VNI below 10000/)
  const v4only = vxlan({ ...defaults, vni: 10_000 }, { subnetManager: sm, extIface: h.extIface, kernel: h.kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  await v4only.registerNetwork(config({ type: 'vxlan' }), new AbortController().signal)
  assert.ok(await h.kernel.getLink('flannel.10000'))
})

test('vxlan puts back its VTEP MAC when someone changes it on the running device', async () => {
  const t = await setup()
  const running = t.network.run(t.ac.signal)
  t.sm.added(peer(3))
  await until(() => t.kernel.calls('replaceRoute').length === 1)
  const dev = (await t.kernel.getLink('flannel.1'))!
  await t.kernel.setLink(dev.index, { mac: '02:00:00:00:00:42' })
  // The repair re-asserts the device (setLink with our MAC) after the rewrite.
  await until(() => t.kernel.calls('setLink').some((c) => (c.args[1] as { mac?: string } | undefined)?.mac === dev.mac))
  await settle()
  const after = (await t.kernel.getLink('flannel.1'))!
  assert.equal(after.index, dev.index, 'the same device, not a new one')
  assert.equal(after.mac, dev.mac)
  t.ac.abort()
  await running
})
