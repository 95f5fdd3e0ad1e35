import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chooseExternalInterface, selectExternalInterface, type IfaceRequest, type NetSnapshot } from '../../../src/daemon/iface-select.ts'
import { formatIp, parseCidr, parseIp, type Family } from '../../../src/ip/ip.ts'
import { isWeftError } from '../../../src/errors.ts'
import { MemoryLogger } from '../../../src/log/logger.ts'
import type { Addr, Kernel, Link, Route, RouteFilter } from '../../../src/kernel/kernel.ts'

const ip = (s: string) => parseIp(s)!
const link = (index: number, name: string, mtu = 1500): Link => ({ index, name, mtu, up: true })
const addr = (index: number, a: string, prefix: number, scope?: Addr['scope']): Addr => ({ index, ip: ip(a), prefix, ...(scope ? { scope } : {}) })
const defRoute = (family: Family, index: number | undefined, metric = 0): Route =>
  ({ dst: parseCidr(family === 4 ? '0.0.0.0/0' : '::/0')!, gateway: ip(family === 4 ? '192.0.2.1' : '2001:db8::1'), ...(index === undefined ? {} : { index }), metric })

/** lo, eth0 (default route, v4+v6), eth1 (second NIC), wg0 (no address), mtu0 (MTU 0). */
const base: NetSnapshot = {
  links: [link(1, 'lo', 65536), link(2, 'eth0'), link(3, 'eth1', 9000), link(4, 'wg0', 1420), link(5, 'mtu0', 0)],
  addrs: [
    addr(1, '127.0.0.1', 8, 'host'), addr(1, '::1', 128, 'host'),
    addr(2, 'fe80::2', 64, 'link'), addr(2, '192.0.2.10', 24), addr(2, '192.0.2.11', 24), addr(2, '2001:db8::10', 64),
    addr(3, '10.1.0.5', 16), addr(3, 'fd00:1::5', 64),
    addr(5, '10.9.0.1', 24),
  ],
  defaultRoutes: [defRoute(4, 2), defRoute(6, 2)],
}
const req = (r: Partial<IfaceRequest> = {}): IfaceRequest => ({ iface: [], ifaceRegex: [], families: [4], ...r })
const pick = (snap: NetSnapshot, r: Partial<IfaceRequest>) => {
  const s = chooseExternalInterface(snap, req(r))
  const i = s.iface
  return { name: i.name, mtu: i.mtu, addr: i.ifaceAddr && formatIp(i.ifaceAddr), v6: i.ifaceV6Addr && formatIp(i.ifaceV6Addr), ext: i.extAddr && formatIp(i.extAddr), ext6: i.extV6Addr && formatIp(i.extV6Addr), via: s.via }
}
function notFound(snap: NetSnapshot, r: Partial<IfaceRequest>, ...texts: string[]): void {
  assert.throws(() => chooseExternalInterface(snap, req(r)), (err: unknown) => {
    assert.ok(isWeftError(err, 'IFACE_NOT_FOUND'), String(err))
    for (const t of texts) assert.ok(err.message.includes(t), `${JSON.stringify(err.message)} lacks ${JSON.stringify(t)}`)
    return true
  })
}

test('no flags: the default-route interface and its first address; external = interface address', () => {
  assert.deepEqual(pick(base, {}), { name: 'eth0', mtu: 1500, addr: '192.0.2.10', v6: undefined, ext: '192.0.2.10', ext6: undefined, via: 'default route' })
})

test('dual stack: both defaults must use the same interface; global IPv6 before link-local', () => {
  assert.deepEqual(pick(base, { families: [4, 6] }), { name: 'eth0', mtu: 1500, addr: '192.0.2.10', v6: '2001:db8::10', ext: '192.0.2.10', ext6: '2001:db8::10', via: 'default route' })
  const split = { ...base, defaultRoutes: [defRoute(4, 2), defRoute(6, 3)] }
  notFound(split, { families: [4, 6] }, 'failed to find any valid interface to use', 'v6 default route interface eth1 must be the same with v4 default route interface eth0')
  assert.equal(pick({ ...base, defaultRoutes: [defRoute(6, 3)] }, { families: [6] }).v6, 'fd00:1::5')
})

test('default route: lowest metric wins; missing route or device is reported', () => {
  assert.equal(pick({ ...base, defaultRoutes: [defRoute(4, 2, 100), defRoute(4, 3, 50)] }, {}).name, 'eth1')
  notFound({ ...base, defaultRoutes: [] }, {}, 'default route: unable to find default route')
  notFound({ ...base, defaultRoutes: [defRoute(4, undefined)] }, {}, 'found default route but could not determine interface')
  notFound({ ...base, defaultRoutes: [defRoute(4, 2)] }, { families: [6] }, 'unable to find IPv6 default route')
})

test('--public-ip alone selects the interface holding it', () => {
  const p = pick(base, { publicIp: ip('10.1.0.5') })
  assert.deepEqual([p.name, p.addr, p.ext, p.via], ['eth1', '10.1.0.5', '10.1.0.5', 'interface holding public IP 10.1.0.5'])
  notFound(base, { publicIp: ip('203.0.113.9') }, 'no interface has address 203.0.113.9')
  assert.equal(pick(base, { families: [6], publicIpv6: ip('fd00:1::5') }).name, 'eth1')
})

test('--iface by IP takes that address; by name takes the first address', () => {
  assert.deepEqual(pick(base, { iface: ['192.0.2.11'] }).addr, '192.0.2.11')
  const byName = pick(base, { iface: ['eth1'] })
  assert.deepEqual([byName.name, byName.mtu, byName.addr, byName.via], ['eth1', 9000, '10.1.0.5', '--iface eth1'])
})

test('--iface values are tried in order; failures are listed', () => {
  const s = chooseExternalInterface(base, req({ iface: ['eth9', 'wg0', 'eth1'] }))
  assert.equal(s.iface.name, 'eth1')
  assert.deepEqual(s.skipped, ['--iface eth9: no interface named eth9 (available: lo, eth0, eth1, wg0, mtu0)', '--iface wg0: failed to find IPv4 address for interface wg0'])
  notFound(base, { iface: ['eth9', 'mtu0'] }, 'failed to find interface to use that matches the interfaces and/or regexes provided',
    '--iface eth9: no interface named eth9', '--iface mtu0: failed to determine MTU for interface mtu0')
})

test('--public-ip overrides the external address only', () => {
  const p = pick(base, { iface: ['eth0'], publicIp: ip('198.51.100.7'), families: [4, 6], publicIpv6: ip('2001:db8:ffff::7') })
  assert.deepEqual([p.addr, p.ext, p.v6, p.ext6], ['192.0.2.10', '198.51.100.7', '2001:db8::10', '2001:db8:ffff::7'])
})

test('dual stack with --iface=<IPv4>: the IPv6 address is filled from the same interface', () => {
  const p = pick(base, { iface: ['10.1.0.5'], families: [4, 6] })
  assert.deepEqual([p.name, p.addr, p.v6], ['eth1', '10.1.0.5', 'fd00:1::5'])
})

test('--iface-regex: addresses first, then names; after every --iface', () => {
  assert.deepEqual(pick(base, { ifaceRegex: ['^10\\.1\\.'] }).addr, '10.1.0.5')
  assert.deepEqual(pick(base, { ifaceRegex: ['192\\.0\\.2\\.11'] }).addr, '192.0.2.11')
  const byName = pick(base, { ifaceRegex: ['^eth1$'] })
  assert.deepEqual([byName.name, byName.addr], ['eth1', '10.1.0.5'])
  const s = chooseExternalInterface(base, req({ iface: ['nope'], ifaceRegex: ['^eth0'] }))
  assert.equal(s.via, '--iface-regex ^eth0')
  assert.equal(s.skipped.length, 1)
  notFound(base, { ifaceRegex: ['^zz'] }, 'could not match pattern ^zz to any of the available network interfaces (lo: [127.0.0.1], eth0: [192.0.2.10 192.0.2.11]')
})

test('--iface-regex in dual stack needs a match in both families on one interface', () => {
  const p = pick(base, { ifaceRegex: ['^(10\\.1|fd00)'], families: [4, 6] })
  assert.deepEqual([p.name, p.addr, p.v6], ['eth1', '10.1.0.5', 'fd00:1::5'])
  // Only the IPv4 address matches: falls back to names, which match nothing here.
  notFound(base, { ifaceRegex: ['^10\\.1\\.'], families: [4, 6] }, 'could not match pattern')
})

test('--iface-can-reach uses the route lookup: device and source address', () => {
  const snap = { ...base, canReach: { dst: parseCidr('10.1.2.3/32')!, index: 3, src: ip('10.1.0.5') } }
  const p = pick(snap, { ifaceCanReach: ip('10.1.2.3') })
  assert.deepEqual([p.name, p.addr, p.via], ['eth1', '10.1.0.5', '--iface-can-reach 10.1.2.3'])
  notFound({ ...base, canReach: { error: 'network unreachable' } }, { ifaceCanReach: ip('10.1.2.3') }, 'failed to get a route to 10.1.2.3: network unreachable')
  // Tried only after --iface fails.
  assert.equal(pick(snap, { iface: ['eth0'], ifaceCanReach: ip('10.1.2.3') }).name, 'eth0')
  assert.equal(pick(snap, { iface: ['bogus'], ifaceCanReach: ip('10.1.2.3') }).name, 'eth1')
})

/** The four Kernel read methods over a snapshot; any other call fails the test. */
function fakeKernel(snap: NetSnapshot, reach?: Route | Error): { kernel: Kernel; calls: string[] } {
  const calls: string[] = []
  const k = {
    listLinks: async () => { calls.push('listLinks'); return [...snap.links] },
    listAddrs: async (family: Family) => { calls.push(`listAddrs ${family}`); return snap.addrs.filter((a) => a.ip.family === family) },
    listRoutes: async (f: RouteFilter) => { calls.push(`listRoutes ${f.family}`); return (snap.defaultRoutes ?? []).filter((r) => r.dst.family === f.family) },
    routeGet: async (dst: { family: Family }) => {
      calls.push(`routeGet ${dst.family}`)
      if (reach instanceof Error) throw reach
      return reach!
    },
  }
  return { kernel: new Proxy(k, { get: (t, p) => (p in t ? t[p as keyof typeof t] : () => { throw new Error(`unexpected kernel call ${String(p)}`) }) }) as unknown as Kernel, calls }
}

test('selectExternalInterface reads only what it needs and logs the choice', async () => {
  const { kernel, calls } = fakeKernel(base)
  const logger = new MemoryLogger()
  const s = await selectExternalInterface(kernel, req({ families: [4, 6] }), logger)
  assert.equal(s.iface.name, 'eth0')
  assert.deepEqual(calls.sort(), ['listAddrs 4', 'listAddrs 6', 'listLinks', 'listRoutes 4', 'listRoutes 6'])
  assert.equal(logger.find('using interface')[0]?.fields.address, '192.0.2.10')

  const named = fakeKernel(base)
  await selectExternalInterface(named.kernel, req({ iface: ['x', 'eth1'] }), logger)
  assert.ok(!named.calls.some((c) => c.startsWith('listRoutes') || c.startsWith('routeGet')))
  assert.equal(logger.find('could not find valid interface')[0]?.fields.attempt, '--iface x: no interface named x (available: lo, eth0, eth1, wg0, mtu0)')
})

test('selectExternalInterface turns a failed route lookup into a reason', async () => {
  const { kernel } = fakeKernel(base, new Error('ENETUNREACH'))
  await assert.rejects(selectExternalInterface(kernel, req({ ifaceCanReach: ip('203.0.113.1') })), /--iface-can-reach 203\.0\.113\.1: failed to get a route to 203\.0\.113\.1: ENETUNREACH/)
  const ok = fakeKernel(base, { dst: parseCidr('203.0.113.1/32')!, index: 2, gateway: ip('192.0.2.1') })
  assert.equal((await selectExternalInterface(ok.kernel, req({ ifaceCanReach: ip('203.0.113.1') }))).iface.ifaceAddr?.value, ip('192.0.2.10').value)
})

test('against MemoryKernel: default route, --iface and --iface-can-reach agree with its tables', async () => {
  const { MemoryKernel } = await import('../../../src/kernel/memory/memory-kernel.ts')
  const kernel = new MemoryKernel()
  // MemoryKernel has no plain ethernet links; TUN links stand in for two NICs.
  const eth0 = await kernel.openTun({ name: 'eth0' })
  const eth1 = await kernel.openTun({ name: 'eth1' })
  await kernel.setLink(eth0.index, { up: true, mtu: 1450 })
  await kernel.setLink(eth1.index, { up: true })
  await kernel.replaceAddr({ index: eth0.index, ip: ip('192.0.2.10'), prefix: 24 })
  await kernel.replaceAddr({ index: eth1.index, ip: ip('10.1.0.5'), prefix: 16 })
  await kernel.replaceRoute({ dst: parseCidr('0.0.0.0/0')!, gateway: ip('192.0.2.1'), index: eth0.index })

  const def = await selectExternalInterface(kernel, req())
  assert.deepEqual([def.iface.name, def.iface.index, def.iface.mtu, formatIp(def.iface.ifaceAddr!)], ['eth0', eth0.index, 1450, '192.0.2.10'])
  const named = await selectExternalInterface(kernel, req({ iface: ['10.1.0.5'] }))
  assert.equal(named.iface.name, 'eth1')
  const reach = await selectExternalInterface(kernel, req({ ifaceCanReach: ip('10.1.9.9') }))
  assert.deepEqual([reach.iface.name, formatIp(reach.iface.ifaceAddr!)], ['eth1', '10.1.0.5'])
  await kernel.deleteRoute({ dst: parseCidr('0.0.0.0/0')!, gateway: ip('192.0.2.1'), index: eth0.index })
  await assert.rejects(selectExternalInterface(kernel, req()), /unable to find default route/)
  eth0.close()
  eth1.close()
})
