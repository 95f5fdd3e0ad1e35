/** vxlan against LinuxKernel, one throwaway namespace per test (root only). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { vxlan } from '../../src/backend/vxlan/vxlan.ts'
import type { VxlanOptions } from '../../src/backend/vxlan/vxlan-options.ts'
import type { ExternalInterface, Network } from '../../src/backend/backend.ts'
import { LinuxKernel } from '../../src/kernel/linux/linux-kernel.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { FakeClock } from '../../src/util/clock.ts'
import { createScratchNetns, needsRoot, type ScratchNetns } from '../helpers/scratch-netns.ts'
import { config, FakeSubnetManager, ip, lease, until } from '../unit/backend/backend-fixtures.ts'

const skip = needsRoot()
const defaults: VxlanOptions = { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 0 }

interface Env {
  ns: ScratchNetns
  sm: FakeSubnetManager
  network: Network
  logger: MemoryLogger
  /** Registers again on the same namespace (a daemon restart). */
  restart(options?: Partial<VxlanOptions>): Promise<{ network: Network; sm: FakeSubnetManager }>
  json<T>(args: string[]): T
}

interface LinkJson { ifname: string; address: string; mtu: number; operstate: string; ifindex: number; linkinfo?: { info_kind: string; info_data: Record<string, unknown> } }

async function withHost(options: Partial<VxlanOptions>, dual: boolean, fn: (env: Env) => Promise<void>): Promise<void> {
  const ns = createScratchNetns('v')
  const kernels: LinuxKernel[] = []
  const stops: (() => Promise<void>)[] = []
  try {
    ns.exec('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p'])
    ns.exec('ip', ['link', 'set', 'eth0p', 'up'])
    ns.exec('ip', ['link', 'set', 'eth0', 'up'])
    ns.exec('ip', ['addr', 'add', '192.168.1.2/24', 'dev', 'eth0'])
    ns.exec('ip', ['addr', 'add', 'fd00:1::2/64', 'dev', 'eth0', 'nodad'])
    const start = async (opts: Partial<VxlanOptions>) => {
      const kernel = new LinuxKernel({ netns: ns.name })
      kernels.push(kernel)
      const eth0 = await kernel.getLink('eth0')
      assert.ok(eth0)
      const extIface: ExternalInterface = { name: 'eth0', index: eth0.index, mtu: eth0.mtu, ifaceAddr: ip('192.168.1.2'), extAddr: ip('192.168.1.2'), ifaceV6Addr: ip('fd00:1::2'), extV6Addr: ip('fd00:1::2') }
      const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24', ...(dual ? { ipv6Subnet: 'fd10:0:0:1::/64' } : {}) })
      const logger = new MemoryLogger()
      const backend = vxlan({ ...defaults, ...opts }, { subnetManager: sm, extIface, kernel, logger, clock: new FakeClock() })
      const ac = new AbortController()
      const network = await backend.registerNetwork(config(dual ? { v4: '10.5.0.0/16', v6: 'fd10::/48', type: 'vxlan' } : { type: 'vxlan' }), ac.signal)
      const running = network.run(ac.signal)
      stops.push(async () => { ac.abort(); await running })
      return { network, sm, logger }
    }
    const first = await start(options)
    await fn({
      ns, sm: first.sm, network: first.network, logger: first.logger,
      restart: async (opts = options) => {
        for (const stop of stops.splice(0)) await stop()
        return start(opts)
      },
      json: <T>(args: string[]) => ns.ipJson<T>(args),
    })
  } finally {
    for (const stop of stops) await stop()
    for (const k of kernels) k.close()
    ns.destroy()
  }
}

const mac = (n: number, v6 = false): string => `0e:00:00:00:${v6 ? '06' : '00'}:${n.toString(16).padStart(2, '0')}`
const peer = (n: number, dual = false) => lease({
  type: 'vxlan', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n}`, data: { VNI: 1, VtepMAC: mac(n) },
  ...(dual ? { ipv6Subnet: `fd10:0:0:${n}::/64`, publicIPv6: `fd00:1::${n}`, v6data: { VNI: 1, VtepMAC: mac(n, true) } } : {}),
})

test('vxlan (linux): device created with VNI, port, GBP, learning and MTU − 50', { skip }, async () => {
  await withHost({ vni: 7, port: 4789, gbp: true, learning: true }, false, async ({ json, network }) => {
    const [link] = json<LinkJson[]>(['-d', 'link', 'show', 'flannel.7'])
    assert.equal(link?.linkinfo?.info_kind, 'vxlan')
    const data = link?.linkinfo?.info_data ?? {}
    assert.equal(data.id, 7)
    assert.equal(data.port, 4789)
    assert.equal(data.local, '192.168.1.2')
    assert.equal(data.learning, true)
    assert.equal(data.gbp, true)
    assert.equal(link?.mtu, 1450)
    assert.equal(network.mtu, 1450)
    assert.deepEqual(json<{ addr_info: { local: string; prefixlen: number }[] }[]>(['-4', 'addr', 'show', 'dev', 'flannel.7'])[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`), ['10.5.1.0/32'])
    assert.deepEqual(network.lease.attrs.backendData, { VNI: 7, VtepMAC: link?.address })
  })
})

test('vxlan (linux): neighbour, FDB and onlink route per peer; removal restores', { skip }, async () => {
  await withHost({}, false, async ({ ns, sm, json, logger }) => {
    sm.added(peer(3))
    await until(() => json<unknown[]>(['route', 'show', '10.5.3.0/24']).length === 1)
    // Our own notifications must not look like someone else's change (no re-assert loop).
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(logger.find('re-asserting peer state changed by someone else').length, 0)
    const [route] = json<{ gateway: string; dev: string; flags: string[] }[]>(['route', 'show', '10.5.3.0/24'])
    assert.equal(route?.gateway, '10.5.3.0')
    assert.equal(route?.dev, 'flannel.1')
    assert.ok(route?.flags.includes('onlink'))
    const neighs = json<{ dst: string; lladdr: string; state: string[] }[]>(['neigh', 'show', 'dev', 'flannel.1'])
    assert.deepEqual(neighs.map((n) => [n.dst, n.lladdr, n.state.includes('PERMANENT')]), [['10.5.3.0', mac(3), true]])
    const fdb = ns.exec('bridge', ['fdb', 'show', 'dev', 'flannel.1'])
    assert.match(fdb, new RegExp(`${mac(3)} dst 192\\.168\\.1\\.3 self permanent`))
    sm.removed(peer(3))
    await until(() => json<unknown[]>(['route', 'show', '10.5.3.0/24']).length === 0)
    await until(() => json<unknown[]>(['neigh', 'show', 'dev', 'flannel.1']).length === 0)
    assert.doesNotMatch(ns.exec('bridge', ['fdb', 'show', 'dev', 'flannel.1']), new RegExp(mac(3)))
  })
})

test('vxlan (linux): entries deleted by someone come back within 1 s', { skip }, async () => {
  await withHost({}, false, async ({ ns, sm, json }) => {
    sm.added(peer(3))
    await until(() => json<unknown[]>(['route', 'show', '10.5.3.0/24']).length === 1)
    const t0 = Date.now()
    ns.exec('ip', ['neigh', 'del', '10.5.3.0', 'dev', 'flannel.1'])
    ns.exec('bridge', ['fdb', 'del', mac(3), 'dev', 'flannel.1', 'dst', '192.168.1.3', 'self'])
    await until(() => json<unknown[]>(['neigh', 'show', 'dev', 'flannel.1']).length === 1 && ns.exec('bridge', ['fdb', 'show', 'dev', 'flannel.1']).includes(mac(3)), 1000)
    assert.ok(Date.now() - t0 < 1000)
  })
})

test('vxlan (linux): a deleted device is recreated with its MAC and every peer replayed', { skip }, async () => {
  await withHost({}, false, async ({ ns, sm, json }) => {
    sm.added(peer(3), peer(4))
    await until(() => json<unknown[]>(['route', 'show', '10.5.4.0/24']).length === 1)
    const before = json<LinkJson[]>(['link', 'show', 'flannel.1'])[0]
    ns.exec('ip', ['link', 'del', 'flannel.1'])
    await until(() => json<unknown[]>(['route', 'show', '10.5.3.0/24']).length === 1 && json<unknown[]>(['route', 'show', '10.5.4.0/24']).length === 1, 3000)
    const after = json<LinkJson[]>(['link', 'show', 'flannel.1'])[0]
    assert.notEqual(after?.ifindex, before?.ifindex)
    assert.equal(after?.address, before?.address)
    assert.equal(json<unknown[]>(['neigh', 'show', 'dev', 'flannel.1']).length, 2)
  })
})

test('vxlan (linux): the MAC is kept across a restart; an incompatible device is recreated', { skip }, async () => {
  await withHost({}, false, async ({ json, restart }) => {
    const first = json<LinkJson[]>(['-d', 'link', 'show', 'flannel.1'])[0]
    // Port 0 leaves the kernel default; learning off by default.
    assert.equal(first?.linkinfo?.info_data.port, 8472)
    assert.equal(first?.linkinfo?.info_data.learning, false)
    await restart()
    const second = json<LinkJson[]>(['link', 'show', 'flannel.1'])[0]
    assert.equal(second?.ifindex, first?.ifindex, 'compatible device reused')
    const { network } = await restart({ port: 4789 })
    const third = json<LinkJson[]>(['-d', 'link', 'show', 'flannel.1'])[0]
    assert.notEqual(third?.ifindex, first?.ifindex, 'incompatible device recreated')
    assert.equal(third?.linkinfo?.info_data.port, 4789)
    assert.deepEqual(network.lease.attrs.backendData, { VNI: 1, VtepMAC: third?.address })
  })
})

test('vxlan (linux): dual stack, IPv6 device MTU − 70', { skip }, async () => {
  await withHost({}, true, async ({ ns, sm, json, network }) => {
    const [v6] = json<LinkJson[]>(['-d', 'link', 'show', 'flannel-v6.1'])
    assert.equal(v6?.mtu, 1430)
    assert.equal(v6?.linkinfo?.info_data.local6, 'fd00:1::2')
    assert.equal(network.mtu, 1430)
    sm.added(peer(3, true))
    await until(() => json<unknown[]>(['-6', 'route', 'show', 'fd10:0:0:3::/64']).length === 1)
    const [route] = json<{ gateway: string; dev: string }[]>(['-6', 'route', 'show', 'fd10:0:0:3::/64'])
    assert.deepEqual([route?.gateway, route?.dev], ['fd10:0:0:3::', 'flannel-v6.1'])
    assert.match(ns.exec('bridge', ['fdb', 'show', 'dev', 'flannel-v6.1']), new RegExp(`${mac(3, true)} dst fd00:1::3 self permanent`))
  })
})

test('vxlan (linux): DirectRouting routes on-link peers directly and the others over VXLAN', { skip }, async () => {
  await withHost({ directRouting: true }, false, async ({ ns, sm, json }) => {
    ns.exec('ip', ['route', 'add', '172.16.0.0/16', 'via', '192.168.1.1', 'dev', 'eth0'])
    sm.added(peer(3), lease({ type: 'vxlan', subnet: '10.5.4.0/24', publicIP: '172.16.0.4', data: { VNI: 1, VtepMAC: mac(4) } }))
    await until(() => json<unknown[]>(['route', 'show', '10.5.3.0/24']).length === 1 && json<unknown[]>(['route', 'show', '10.5.4.0/24']).length === 1)
    const [direct] = json<{ gateway: string; dev: string }[]>(['route', 'show', '10.5.3.0/24'])
    assert.deepEqual([direct?.gateway, direct?.dev], ['192.168.1.3', 'eth0'])
    const [overlay] = json<{ gateway: string; dev: string }[]>(['route', 'show', '10.5.4.0/24'])
    assert.deepEqual([overlay?.gateway, overlay?.dev], ['10.5.4.0', 'flannel.1'])
    const fdb = ns.exec('bridge', ['fdb', 'show', 'dev', 'flannel.1'])
    assert.match(fdb, new RegExp(`${mac(4)} dst 172\\.16\\.0\\.4`))
    assert.doesNotMatch(fdb, new RegExp(mac(3)))
  })
})
