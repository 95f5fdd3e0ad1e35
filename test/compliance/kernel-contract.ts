/**
 * The Kernel contract: one suite run against MemoryKernel (always) and LinuxKernel (as root,
 * in a throwaway namespace), so the twin cannot drift from Linux. Every test gets a fresh kernel
 * whose only link is a down `lo`, like a new network namespace.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr, formatIp, parseCidr, parseIp, type Family, type IpAddr, type IpNet } from '../../src/ip/ip.ts'
import { isKernelErrno, KernelError } from '../../src/kernel/kernel-error.ts'
import type { Addr, FdbEntry, Kernel, KernelEvent, Link, Neigh, Route } from '../../src/kernel/kernel.ts'

export interface KernelHarness {
  readonly kernel: Kernel
  teardown(): Promise<void>
}

export interface ContractOptions {
  /** A reason to skip the whole suite (e.g. not root). */
  readonly skip?: string | false
}

const ip = (text: string): IpAddr => parseIp(text) ?? assert.fail(`bad ip ${text}`)
const net = (text: string): IpNet => parseCidr(text) ?? assert.fail(`bad cidr ${text}`)

/** Per-family fixtures: a lease subnet, a peer, an underlay address. */
const FAM = {
  4: { addr: '10.5.1.0', subnet: '10.5.1.0/24', peerNet: '10.5.2.0/24', peerGw: '10.5.2.0', local: '192.0.2.10', remote: '192.0.2.20', lan: '10.7.0.1/24', lanGw: '10.7.0.9', far: '10.9.0.0/16', farHost: '10.9.0.7', peerHost: '10.5.2.5', peerGw2: '10.5.2.1' },
  6: { addr: 'fd00:5:1::', subnet: 'fd00:5:1::/64', peerNet: 'fd00:5:2::/64', peerGw: 'fd00:5:2::', local: '2001:db8::10', remote: '2001:db8::20', lan: 'fd00:7::1/64', lanGw: 'fd00:7::9', far: 'fd00:9::/48', farHost: 'fd00:9::7', peerHost: 'fd00:5:2::5', peerGw2: 'fd00:5:2::1' },
} as const

/** Entries weft put there: hides IPv6 link-local/multicast entries the kernel adds by itself. */
const ours = (n: IpNet | IpAddr): boolean => {
  const v = 'addr' in n ? n.addr : n.value
  return n.family === 4 ? (v >> 24n) !== 127n : (v >> 118n) !== 0x3fan && (v >> 120n) !== 0xffn && v !== 1n
}

const routeText = (r: Route): string =>
  [r.type, formatCidr(r.dst), r.gateway ? `via ${formatIp(r.gateway)}` : '', r.index !== undefined ? `dev ${r.index}` : '',
    r.onlink ? 'onlink' : '', `table ${r.table}`, r.metric !== undefined ? `metric ${r.metric}` : '', r.src ? `src ${formatIp(r.src)}` : '', `scope ${r.scope}`]
    .filter((s) => s !== '' && s !== undefined).join(' ')

const addrText = (a: Addr): string => `${formatIp(a.ip)}/${a.prefix} dev ${a.index} scope ${a.scope}`
const neighText = (n: Neigh): string => `${formatIp(n.ip)} dev ${n.index} lladdr ${n.mac} ${n.state}`
const fdbText = (f: FdbEntry): string => `${f.mac} dev ${f.index}${f.dst ? ` dst ${formatIp(f.dst)}` : ''} ${f.self ? 'self' : ''} ${f.state}`

async function rejects(p: Promise<unknown>, ...errnos: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof KernelError, `expected a KernelError, got ${String(err)}`)
    assert.ok(isKernelErrno(err, ...errnos), `expected ${errnos.join('|')}, got ${err.errno} (${err.message})`)
    return true
  })
}

/** A vxlan device, up, with the lease address — what the vxlan backend builds. */
async function vxlanUp(k: Kernel, family: Family, name = 'wvx0'): Promise<Link> {
  await k.setLink(1, { up: true })
  const link = await k.createVxlan({ name, vni: 7, port: 0, learning: false, gbp: false, mtu: 1450, local: ip(FAM[family].local) })
  await k.setLink(link.index, { up: true })
  return link
}

export function kernelContract(name: string, setup: () => Promise<KernelHarness>, options: ContractOptions = {}): void {
  const it = (title: string, fn: (k: Kernel) => Promise<void>): void => {
    test(title, { skip: options.skip ?? false }, async () => {
      const h = await setup()
      try {
        await fn(h.kernel)
      } finally {
        await h.teardown()
      }
    })
  }

  describe(`kernel contract: ${name}`, () => {
    it('a fresh kernel has only a down lo', async (k) => {
      const lo = await k.getLink('lo')
      assert.equal(lo?.index, 1)
      assert.equal(lo?.up, false)
      assert.equal(lo?.mtu, 65536)
      assert.equal(await k.getLink('nope0'), undefined)
      assert.equal(await k.getLinkByIndex(4242), undefined)
      assert.deepEqual((await k.listLinks()).map((l) => l.name).filter((n) => n === 'lo'), ['lo'])
    })

    it('createVxlan reports its attributes and is down', async (k) => {
      const link = await k.createVxlan({ name: 'wvx0', vni: 42, port: 0, learning: false, gbp: false, mtu: 1400, mac: '0E:A0:00:00:00:02', local: ip('192.0.2.10') })
      const got = await k.getLink('wvx0')
      assert.deepEqual(got, link)
      assert.equal(got?.kind, 'vxlan')
      assert.equal(got?.mtu, 1400)
      assert.equal(got?.mac, '0e:a0:00:00:00:02')
      assert.equal(got?.up, false)
      assert.deepEqual(got?.vxlan, { vni: 42, port: 8472, learning: false, gbp: false, local: ip('192.0.2.10') })
      assert.deepEqual(await k.getLinkByIndex(link.index), link)
      const gbp = await k.createVxlan({ name: 'wvx1', vni: 43, port: 4789, learning: true, gbp: true })
      assert.deepEqual(gbp.vxlan, { vni: 43, port: 4789, learning: true, gbp: true })
      assert.match(gbp.mac ?? '', /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
    })

    it('createVxlan fails with EEXIST on a duplicate name or VNI', async (k) => {
      await k.createVxlan({ name: 'wvx0', vni: 42, port: 0, learning: false, gbp: false })
      await rejects(k.createVxlan({ name: 'wvx0', vni: 43, port: 0, learning: false, gbp: false }), 'EEXIST')
      await rejects(k.createVxlan({ name: 'wvx1', vni: 42, port: 0, learning: false, gbp: false }), 'EEXIST')
      await k.createVxlan({ name: 'wvx2', vni: 42, port: 4789, learning: false, gbp: false })
    })

    it('setLink changes up, mtu and mac; unknown index is ENODEV', async (k) => {
      const link = await k.createVxlan({ name: 'wvx0', vni: 1, port: 0, learning: false, gbp: false })
      await k.setLink(link.index, { up: true, mtu: 1300, mac: '0e:a0:00:00:00:07' })
      const got = await k.getLinkByIndex(link.index)
      assert.equal(got?.up, true)
      assert.equal(got?.mtu, 1300)
      assert.equal(got?.mac, '0e:a0:00:00:00:07')
      await k.setLink(link.index, { up: false })
      assert.equal((await k.getLink('wvx0'))?.up, false)
      await rejects(k.setLink(4242, { up: true }), 'ENODEV')
    })

    it('deleteLink removes the link; a missing one is ENODEV', async (k) => {
      const link = await k.createVxlan({ name: 'wvx0', vni: 1, port: 0, learning: false, gbp: false })
      await k.deleteLink(link.index)
      assert.equal(await k.getLink('wvx0'), undefined)
      await rejects(k.deleteLink(link.index), 'ENODEV')
    })

    it('sysctls are written and read back', async (k) => {
      await k.createVxlan({ name: 'wvx0', vni: 1, port: 0, learning: false, gbp: false })
      await k.setSysctl('net/ipv6/conf/wvx0/accept_ra', '0')
      assert.equal(await k.getSysctl('net/ipv6/conf/wvx0/accept_ra'), '0')
      await k.setSysctl('net/ipv4/conf/wvx0/rp_filter', '2')
      assert.equal(await k.getSysctl('net/ipv4/conf/wvx0/rp_filter'), '2')
      await rejects(k.setSysctl('net/ipv6/conf/nope0/accept_ra', '0'), 'ENOENT')
    })

    it('setting a link down keeps IPv4 addresses and FDB, drops IPv6 addresses, neighbours, routes', async (k) => {
      const link = await vxlanUp(k, 4)
      await k.replaceAddr({ index: link.index, ip: ip('10.5.1.0'), prefix: 32 })
      await k.replaceAddr({ index: link.index, ip: ip('fd00:5:1::1'), prefix: 64 })
      await k.replaceNeigh({ index: link.index, ip: ip('10.5.2.0'), mac: '0e:a0:00:00:00:21' })
      await k.replaceFdb({ index: link.index, mac: '0e:a0:00:00:00:21', dst: ip('192.0.2.20') })
      await k.replaceRoute({ dst: net('10.5.2.0/24'), gateway: ip('10.5.2.0'), index: link.index, onlink: true })
      await k.replaceRoute({ dst: net('fd00:5:2::/64'), index: link.index })
      await k.setLink(link.index, { up: false })
      assert.deepEqual((await k.listAddrs(4, link.index)).map(addrText), [`10.5.1.0/32 dev ${link.index} scope universe`])
      assert.deepEqual((await k.listAddrs(6, link.index)).filter((a) => ours(a.ip)), [])
      assert.deepEqual((await k.listNeighs(4, link.index)).filter((n) => ours(n.ip)), [])
      assert.equal((await k.listFdb(link.index)).length, 1)
      assert.deepEqual((await k.listRoutes({ family: 4, index: link.index })).filter((r) => ours(r.dst)), [])
      assert.deepEqual((await k.listRoutes({ family: 6, index: link.index })).filter((r) => ours(r.dst)), [])
    })

    for (const family of [4, 6] as const) {
      const f = FAM[family]
      const v = `IPv${family}`

      it(`${v}: replaceAddr/listAddrs/deleteAddr`, async (k) => {
        const link = await vxlanUp(k, family)
        const bits = family === 4 ? 32 : 128
        const addr: Addr = { index: link.index, ip: ip(f.addr), prefix: bits }
        await k.replaceAddr(addr)
        await k.replaceAddr(addr)
        const list = (await k.listAddrs(family, link.index)).filter((a) => ours(a.ip))
        assert.deepEqual(list.map(addrText), [`${f.addr}/${bits} dev ${link.index} scope universe`])
        assert.deepEqual((await k.listAddrs(family === 4 ? 6 : 4, link.index)).filter((a) => ours(a.ip)), [])
        await k.deleteAddr(addr)
        assert.deepEqual((await k.listAddrs(family, link.index)).filter((a) => ours(a.ip)), [])
        await rejects(k.deleteAddr(addr), 'EADDRNOTAVAIL')
        await rejects(k.replaceAddr({ ...addr, index: 4242 }), 'ENODEV')
      })

      it(`${v}: an address with a prefix adds a connected route`, async (k) => {
        const link = await vxlanUp(k, family)
        const lan = parseCidr(f.lan) as IpNet
        await k.replaceAddr({ index: link.index, ip: ip(f.lan.split('/')[0] as string), prefix: lan.prefix })
        const routes = (await k.listRoutes({ family, index: link.index })).filter((r) => ours(r.dst))
        assert.deepEqual(routes.map((r) => [formatCidr(r.dst), r.gateway, r.index, r.type]), [[formatCidr(lan), undefined, link.index, 'unicast']])
        // The gateway on that LAN is now reachable without onlink.
        await k.replaceRoute({ dst: net(f.far), gateway: ip(f.lanGw), index: link.index })
        const far = await k.listRoutes({ family, dst: net(f.far) })
        assert.deepEqual(far.map(routeText), [routeText({ ...far[0] as Route, gateway: ip(f.lanGw), index: link.index })])
        const got = await k.routeGet(ip(f.farHost))
        assert.equal(got.index, link.index)
        assert.deepEqual(got.gateway, ip(f.lanGw))
      })

      it(`${v}: replaceRoute dev, replace again, deleteRoute, ESRCH when missing`, async (k) => {
        const link = await vxlanUp(k, family)
        const route: Route = { dst: net(f.peerNet), index: link.index }
        await k.replaceRoute(route)
        await k.replaceRoute(route)
        const list = await k.listRoutes({ family, dst: net(f.peerNet) })
        assert.equal(list.length, 1)
        const r = list[0] as Route
        assert.equal(r.index, link.index)
        assert.equal(r.type, 'unicast')
        assert.equal(r.table, 254)
        assert.equal(r.gateway, undefined)
        assert.equal(r.scope, family === 4 ? 'link' : 'universe')
        assert.equal(r.metric, family === 4 ? undefined : 1024)
        await k.deleteRoute(route)
        assert.deepEqual(await k.listRoutes({ family, dst: net(f.peerNet) }), [])
        await rejects(k.deleteRoute(route), 'ESRCH')
      })

      it(`${v}: onlink gateway route as the vxlan backend installs it`, async (k) => {
        const link = await vxlanUp(k, family)
        const route: Route = { dst: net(f.peerNet), gateway: ip(f.peerGw), index: link.index, onlink: true }
        await k.replaceRoute(route)
        const list = await k.listRoutes({ family, index: link.index })
        const r = list.find((x) => formatCidr(x.dst) === f.peerNet)
        assert.ok(r, 'route listed')
        assert.equal(r.onlink, true)
        assert.deepEqual(r.gateway, ip(f.peerGw))
        assert.equal(r.scope, 'universe')
        const got = await k.routeGet(ip(f.peerHost))
        assert.equal(got.index, link.index)
        assert.deepEqual(got.gateway, ip(f.peerGw))
        // Replacing with another gateway overwrites the same route (same dst/table/metric).
        await k.replaceRoute({ ...route, gateway: ip(f.peerGw2) })
        assert.equal((await k.listRoutes({ family, dst: net(f.peerNet) })).length, 1)
        // Delete with a non-matching gateway does not match.
        await rejects(k.deleteRoute({ dst: net(f.peerNet), gateway: ip(f.peerGw), index: link.index }), 'ESRCH')
        await k.deleteRoute({ dst: net(f.peerNet), index: link.index })
      })

      it(`${v}: a gateway without a connected route is unreachable unless onlink`, async (k) => {
        const link = await vxlanUp(k, family)
        await rejects(k.replaceRoute({ dst: net(f.peerNet), gateway: ip(f.peerGw), index: link.index }), family === 4 ? 'ENETUNREACH' : 'EHOSTUNREACH')
        assert.deepEqual(await k.listRoutes({ family, dst: net(f.peerNet) }), [])
      })

      it(`${v}: a route needs an existing, up device`, async (k) => {
        await rejects(k.replaceRoute({ dst: net(f.peerNet), index: 4242 }), 'ENODEV')
        const link = await k.createVxlan({ name: 'wvx0', vni: 7, port: 0, learning: false, gbp: false, local: ip(f.local) })
        await rejects(k.replaceRoute({ dst: net(f.peerNet), index: link.index }), 'ENETDOWN')
      })

      it(`${v}: blackhole routes`, async (k) => {
        await k.setLink(1, { up: true })
        await k.replaceRoute({ dst: net(f.far), type: 'blackhole' })
        const list = await k.listRoutes({ family, type: 'blackhole' })
        assert.deepEqual(list.map((r) => formatCidr(r.dst)), [f.far])
        assert.equal(list[0]?.gateway, undefined)
        await k.deleteRoute({ dst: net(f.far), type: 'blackhole' })
        assert.deepEqual(await k.listRoutes({ family, type: 'blackhole' }), [])
      })

      it(`${v}: listRoutes filters by device; link down and delete flush routes`, async (k) => {
        const a = await vxlanUp(k, family, 'wvx0')
        const b = await k.createVxlan({ name: 'wvx1', vni: 8, port: 0, learning: false, gbp: false, local: ip(f.local) })
        await k.setLink(b.index, { up: true })
        await k.replaceRoute({ dst: net(f.peerNet), index: a.index })
        await k.replaceRoute({ dst: net(f.far), index: b.index })
        const onA = (await k.listRoutes({ family, index: a.index })).filter((r) => ours(r.dst))
        assert.deepEqual(onA.map((r) => formatCidr(r.dst)), [f.peerNet])
        await k.setLink(a.index, { up: false })
        assert.deepEqual((await k.listRoutes({ family, index: a.index })).filter((r) => ours(r.dst)), [])
        await k.deleteLink(b.index)
        assert.deepEqual((await k.listRoutes({ family, dst: net(f.far) })), [])
      })

      it(`${v}: routeGet with no route is ENETUNREACH`, async (k) => {
        await k.setLink(1, { up: true })
        await rejects(k.routeGet(ip(f.remote)), 'ENETUNREACH')
      })

      it(`${v}: replaceNeigh permanent, update, delete, ENOENT when missing`, async (k) => {
        const link = await vxlanUp(k, family)
        const neigh: Neigh = { index: link.index, ip: ip(f.peerGw), mac: '0e:a0:00:00:00:21', state: 'permanent' }
        await k.replaceNeigh(neigh)
        await k.replaceNeigh({ ...neigh, mac: '0e:a0:00:00:00:22' })
        const list = (await k.listNeighs(family, link.index)).filter((n) => ours(n.ip))
        assert.deepEqual(list.map(neighText), [`${f.peerGw} dev ${link.index} lladdr 0e:a0:00:00:00:22 permanent`])
        await k.deleteNeigh(neigh)
        assert.deepEqual((await k.listNeighs(family, link.index)).filter((n) => ours(n.ip)), [])
        await rejects(k.deleteNeigh(neigh), 'ENOENT')
        await rejects(k.replaceNeigh({ ...neigh, index: 4242 }), 'ENODEV')
      })

      it(`${v}: replaceFdb self permanent dst, update, delete`, async (k) => {
        const link = await vxlanUp(k, family)
        const entry: FdbEntry = { index: link.index, mac: '0e:a0:00:00:00:21', dst: ip(f.remote) }
        await k.replaceFdb(entry)
        await k.replaceFdb({ ...entry, dst: ip(f.local) })
        const list = await k.listFdb(link.index)
        assert.deepEqual(list.map(fdbText), [`0e:a0:00:00:00:21 dev ${link.index} dst ${f.local} self permanent`])
        // vxlan quirk: a dst that does not match an existing MAC is a silent no-op.
        await k.deleteFdb(entry)
        assert.equal((await k.listFdb(link.index)).length, 1)
        await k.deleteFdb({ ...entry, dst: ip(f.local) })
        assert.deepEqual(await k.listFdb(link.index), [])
        await rejects(k.deleteFdb(entry), 'ENOENT')
      })

      it(`${v}: appendFdb keeps several dsts for the all-zero MAC`, async (k) => {
        const link = await vxlanUp(k, family)
        const zero = '00:00:00:00:00:00'
        await k.appendFdb({ index: link.index, mac: zero, dst: ip(f.remote) })
        await k.appendFdb({ index: link.index, mac: zero, dst: ip(f.local) })
        await k.appendFdb({ index: link.index, mac: zero, dst: ip(f.local) })
        const dsts = (await k.listFdb(link.index)).map((e) => formatIp(e.dst as IpAddr)).sort()
        assert.deepEqual(dsts, [f.local, f.remote].sort())
        await k.deleteFdb({ index: link.index, mac: zero, dst: ip(f.remote) })
        assert.deepEqual((await k.listFdb(link.index)).map(fdbText), [`${zero} dev ${link.index} dst ${f.local} self permanent`])
        await k.deleteFdb({ index: link.index, mac: zero })
        assert.deepEqual(await k.listFdb(link.index), [])
      })

      it(`${v}: an FDB dst of the other family is EAFNOSUPPORT`, async (k) => {
        const link = await vxlanUp(k, family)
        const other = FAM[family === 4 ? 6 : 4].remote
        await rejects(k.replaceFdb({ index: link.index, mac: '0e:a0:00:00:00:21', dst: ip(other) }), 'EAFNOSUPPORT')
      })

      it(`${v}: subscribe reports link, address, route, neighbour and FDB changes`, async (k) => {
        const events: KernelEvent[] = []
        const ac = new AbortController()
        await k.subscribe(['link', 'addr', 'route', 'neigh', 'fdb'], (e) => events.push(e), ac.signal)
        try {
          const link = await vxlanUp(k, family)
          const addr: Addr = { index: link.index, ip: ip(f.addr), prefix: family === 4 ? 32 : 128 }
          await k.replaceAddr(addr)
          const route: Route = { dst: net(f.peerNet), gateway: ip(f.peerGw), index: link.index, onlink: true }
          const neigh: Neigh = { index: link.index, ip: ip(f.peerGw), mac: '0e:a0:00:00:00:21' }
          const fdb: FdbEntry = { index: link.index, mac: '0e:a0:00:00:00:21', dst: ip(f.remote) }
          await k.replaceNeigh(neigh)
          await k.replaceFdb(fdb)
          await k.replaceRoute(route)
          await k.deleteRoute(route)
          await k.deleteFdb(fdb)
          await k.deleteNeigh(neigh)
          await k.deleteAddr(addr)
          await k.deleteLink(link.index)
          const want = [
            `link new ${link.index}`, `addr new ${f.addr}`, `neigh new ${f.peerGw}`, `fdb new 0e:a0:00:00:00:21`, `route new ${f.peerNet}`,
            `route del ${f.peerNet}`, `fdb del 0e:a0:00:00:00:21`, `neigh del ${f.peerGw}`, `addr del ${f.addr}`, `link del ${link.index}`,
          ]
          const seen = (): string[] => events.map((e) =>
            e.kind === 'link' ? `link ${e.action} ${e.link.index}` :
            e.kind === 'route' ? `route ${e.action} ${formatCidr(e.route.dst)}` :
            e.kind === 'neigh' ? `neigh ${e.action} ${formatIp(e.neigh.ip)}` :
            e.kind === 'fdb' ? `fdb ${e.action} ${e.fdb.mac}` : `addr ${e.action} ${formatIp(e.addr.ip)}`)
          for (let i = 0; i < 20 && !want.every((w) => seen().includes(w)); i++) await new Promise((r) => setTimeout(r, 10))
          for (const w of want) assert.ok(seen().includes(w), `missing event "${w}" in ${JSON.stringify(seen())}`)
          const order = want.map((w) => seen().indexOf(w))
          assert.deepEqual(order, [...order].sort((x, y) => x - y), 'events arrive in order')
        } finally {
          ac.abort()
        }
      })
    }
  })
}
