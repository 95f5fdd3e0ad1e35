/**
 * LinuxKernel checked against iproute2 as the oracle (`ip -json`, `bridge -json`), both ways:
 * what LinuxKernel writes is what `ip` shows, and what `ip` writes is what LinuxKernel lists.
 * Also: hand deletions reach a subscription within 100 ms, and TUN devices. Root only.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { formatCidr, formatIp, parseCidr, parseIp, type IpAddr, type IpNet } from '../../src/ip/ip.ts'
import { LinuxKernel } from '../../src/kernel/linux/linux-kernel.ts'
import type { KernelEvent } from '../../src/kernel/kernel.ts'
import { createScratchNetns, needsRoot, type ScratchNetns } from '../helpers/scratch-netns.ts'

const skip = needsRoot()
const ip = (t: string): IpAddr => parseIp(t) as IpAddr
const net = (t: string): IpNet => parseCidr(t) as IpNet

async function withKernel(fn: (k: LinuxKernel, ns: ScratchNetns) => Promise<void>): Promise<void> {
  const ns = createScratchNetns('o')
  const k = new LinuxKernel({ netns: ns.name })
  try {
    await k.setLink(1, { up: true })
    await fn(k, ns)
  } finally {
    k.close()
    ns.destroy()
  }
}

interface IpLink { ifname: string; mtu: number; address: string; flags: string[]; linkinfo?: { info_kind: string; info_data?: Record<string, unknown> } }
interface IpRoute { dst: string; gateway?: string; dev?: string; flags: string[]; type?: string; metric?: number }

const FAM = {
  4: { local: '192.0.2.10', remote: '192.0.2.20', addr: '10.5.1.0', bits: 32, peerNet: '10.5.2.0/24', peerGw: '10.5.2.0', far: '10.9.0.0/16' },
  6: { local: '2001:db8::10', remote: '2001:db8::20', addr: 'fd00:5:1::', bits: 128, peerNet: 'fd00:5:2::/64', peerGw: 'fd00:5:2::', far: 'fd00:9::/48' },
} as const

for (const family of [4, 6] as const) {
  const f = FAM[family]
  const v = `-${family}`

  test(`oracle IPv${family}: what LinuxKernel writes, ip and bridge show`, { skip }, () => withKernel(async (k, ns) => {
    const link = await k.createVxlan({ name: 'flannel.1', vni: 1, port: 8472, learning: false, gbp: family === 4, mtu: 1450, mac: '0e:a0:00:00:00:01', local: ip(f.local) })
    let l = ns.ipJson<IpLink[]>(['-d', 'link', 'show', 'flannel.1'])[0] as IpLink
    assert.equal(l.mtu, 1450)
    assert.equal(l.address, '0e:a0:00:00:00:01')
    assert.equal(l.linkinfo?.info_kind, 'vxlan')
    assert.equal(l.linkinfo?.info_data?.id, 1)
    assert.equal(l.linkinfo?.info_data?.port, 8472)
    assert.equal(l.linkinfo?.info_data?.learning, false)
    assert.equal(l.linkinfo?.info_data?.[family === 4 ? 'local' : 'local6'], f.local)
    assert.equal(l.linkinfo?.info_data?.gbp, family === 4 ? true : undefined)
    await k.setLink(link.index, { up: true, mtu: 1400 })
    l = ns.ipJson<IpLink[]>(['link', 'show', 'flannel.1'])[0] as IpLink
    assert.ok(l.flags.includes('UP'))
    assert.equal(l.mtu, 1400)

    await k.replaceAddr({ index: link.index, ip: ip(f.addr), prefix: f.bits })
    const addrs = ns.ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>([v, 'addr', 'show', 'dev', 'flannel.1'])
    assert.ok(addrs[0]?.addr_info.some((a) => a.local === f.addr && a.prefixlen === f.bits), JSON.stringify(addrs))

    await k.replaceNeigh({ index: link.index, ip: ip(f.peerGw), mac: '0e:a0:00:00:00:02' })
    const neighs = ns.ipJson<{ dst: string; lladdr: string; state: string[] }[]>([v, 'neigh', 'show', 'dev', 'flannel.1'])
    assert.deepEqual(neighs.filter((n) => n.dst === f.peerGw).map((n) => [n.lladdr, n.state]), [['0e:a0:00:00:00:02', ['PERMANENT']]])

    await k.replaceFdb({ index: link.index, mac: '0e:a0:00:00:00:02', dst: ip(f.remote) })
    const fdb = JSON.parse(ns.exec('bridge', ['-json', 'fdb', 'show', 'dev', 'flannel.1'])) as { mac: string; dst: string; flags: string[]; state: string }[]
    assert.deepEqual(fdb.map((e) => [e.mac, e.dst, e.flags, e.state]), [['0e:a0:00:00:00:02', f.remote, ['self'], 'permanent']])

    await k.replaceRoute({ dst: net(f.peerNet), gateway: ip(f.peerGw), index: link.index, onlink: true })
    await k.replaceRoute({ dst: net(f.far), type: 'blackhole' })
    const routes = ns.ipJson<IpRoute[]>([v, 'route', 'show'])
    const peer = routes.find((r) => r.dst === f.peerNet)
    assert.equal(peer?.gateway, f.peerGw)
    assert.equal(peer?.dev, 'flannel.1')
    assert.ok(peer?.flags.includes('onlink'))
    assert.equal(routes.find((r) => r.dst === f.far)?.type, 'blackhole')

    await k.setSysctl(`net/ipv6/conf/flannel.1/accept_ra`, '0')
    assert.equal(ns.exec('cat', ['/proc/sys/net/ipv6/conf/flannel.1/accept_ra']).trim(), '0')

    await k.deleteRoute({ dst: net(f.peerNet), gateway: ip(f.peerGw), index: link.index })
    await k.deleteRoute({ dst: net(f.far), type: 'blackhole' })
    await k.deleteFdb({ index: link.index, mac: '0e:a0:00:00:00:02', dst: ip(f.remote) })
    await k.deleteNeigh({ index: link.index, ip: ip(f.peerGw) })
    await k.deleteAddr({ index: link.index, ip: ip(f.addr), prefix: f.bits })
    assert.equal(ns.ipJson<IpRoute[]>([v, 'route', 'show']).filter((r) => r.dst === f.peerNet || r.dst === f.far).length, 0)
    assert.equal(ns.exec('bridge', ['fdb', 'show', 'dev', 'flannel.1']).trim(), '')
    assert.equal(ns.ipJson<{ dst: string }[]>([v, 'neigh', 'show', 'dev', 'flannel.1']).filter((n) => n.dst === f.peerGw).length, 0)
    await k.deleteLink(link.index)
    assert.throws(() => ns.exec('ip', ['link', 'show', 'flannel.1']))
  }))

  test(`oracle IPv${family}: what ip and bridge write, LinuxKernel lists`, { skip }, () => withKernel(async (k, ns) => {
    const local = family === 4 ? ['local', f.local] : ['local', f.local]
    ns.exec('ip', ['link', 'add', 'flannel.1', 'mtu', '1450', 'address', '0e:a0:00:00:00:01', 'type', 'vxlan', 'id', '3', 'dstport', '4789', ...local, 'nolearning'])
    ns.exec('ip', ['link', 'set', 'flannel.1', 'up'])
    const link = await k.getLink('flannel.1')
    assert.deepEqual(link, {
      index: link?.index, name: 'flannel.1', kind: 'vxlan', mtu: 1450, mac: '0e:a0:00:00:00:01', up: true,
      vxlan: { vni: 3, port: 4789, learning: false, gbp: false, local: ip(f.local) },
    })
    const idx = link?.index as number
    ns.exec('ip', [v, 'addr', 'add', `${f.addr}/${f.bits}`, 'dev', 'flannel.1'])
    ns.exec('ip', [v, 'neigh', 'replace', f.peerGw, 'lladdr', '0e:a0:00:00:00:02', 'dev', 'flannel.1', 'nud', 'permanent'])
    ns.exec('bridge', ['fdb', 'replace', '0e:a0:00:00:00:02', 'dev', 'flannel.1', 'dst', f.remote, 'self', 'permanent'])
    ns.exec('ip', [v, 'route', 'replace', f.peerNet, 'via', f.peerGw, 'dev', 'flannel.1', 'onlink'])
    ns.exec('ip', [v, 'route', 'replace', 'blackhole', f.far])

    const addrs = await k.listAddrs(family, idx)
    assert.ok(addrs.some((a) => formatIp(a.ip) === f.addr && a.prefix === f.bits && a.scope === 'universe'))
    assert.deepEqual((await k.listNeighs(family, idx)).filter((n) => formatIp(n.ip) === f.peerGw),
      [{ index: idx, ip: ip(f.peerGw), mac: '0e:a0:00:00:00:02', state: 'permanent' }])
    assert.deepEqual(await k.listFdb(idx), [{ index: idx, mac: '0e:a0:00:00:00:02', dst: ip(f.remote), self: true, state: 'permanent' }])
    const [peer] = await k.listRoutes({ family, dst: net(f.peerNet) })
    assert.deepEqual({ ...peer, metric: undefined }, {
      dst: net(f.peerNet), gateway: ip(f.peerGw), index: idx, onlink: true, table: 254, type: 'unicast', scope: 'universe', metric: undefined,
    })
    const [bh] = await k.listRoutes({ family, type: 'blackhole' })
    assert.equal(bh && formatCidr(bh.dst), f.far)
    const got = await k.routeGet(ip(f.peerGw))
    assert.equal(got.index, idx)
    assert.deepEqual(got.gateway, ip(f.peerGw))
  }))

  test(`oracle IPv${family}: deletions by hand reach a subscription within 100 ms`, { skip }, () => withKernel(async (k, ns) => {
    const link = await k.createVxlan({ name: 'flannel.1', vni: 1, port: 0, learning: false, gbp: false, local: ip(f.local) })
    await k.setLink(link.index, { up: true })
    await k.replaceNeigh({ index: link.index, ip: ip(f.peerGw), mac: '0e:a0:00:00:00:02' })
    await k.replaceFdb({ index: link.index, mac: '0e:a0:00:00:00:02', dst: ip(f.remote) })
    await k.replaceRoute({ dst: net(f.peerNet), gateway: ip(f.peerGw), index: link.index, onlink: true })
    const events: { e: KernelEvent; at: number }[] = []
    const ac = new AbortController()
    await k.subscribe(['link', 'route', 'neigh', 'fdb'], (e) => events.push({ e, at: performance.now() }), ac.signal)
    try {
      const waitFor = async (match: (e: KernelEvent) => boolean, what: string): Promise<number> => {
        const start = performance.now()
        for (;;) {
          const hit = events.find((x) => x.at >= start - 1 && match(x.e))
          if (hit) return hit.at - start
          if (performance.now() - start > 1000) assert.fail(`no ${what} event within 1 s`)
          await new Promise((r) => setTimeout(r, 2))
        }
      }
      const check = async (cmd: string, args: string[], match: (e: KernelEvent) => boolean, what: string): Promise<void> => {
        const t0 = performance.now()
        ns.exec(cmd, args)
        const issued = performance.now() - t0
        const waitPromise = waitFor(match, what)
        const latency = await waitPromise
        assert.ok(latency < 100, `${what} reported after ${(latency + issued).toFixed(1)} ms`)
      }
      await check('ip', [v, 'route', 'del', f.peerNet], (e) => e.kind === 'route' && e.action === 'del' && formatCidr(e.route.dst) === f.peerNet, 'route del')
      await check('ip', [v, 'neigh', 'del', f.peerGw, 'dev', 'flannel.1'], (e) => e.kind === 'neigh' && e.action === 'del' && formatIp(e.neigh.ip) === f.peerGw, 'neigh del')
      await check('bridge', ['fdb', 'del', '0e:a0:00:00:00:02', 'dev', 'flannel.1', 'dst', f.remote, 'self'], (e) => e.kind === 'fdb' && e.action === 'del' && e.fdb.mac === '0e:a0:00:00:00:02', 'fdb del')
      await check('ip', ['link', 'del', 'flannel.1'], (e) => e.kind === 'link' && e.action === 'del' && e.link.name === 'flannel.1', 'link del')
    } finally {
      ac.abort()
    }
  }))
}

test('TUN: non-blocking fds, multi-queue, removed on close', { skip }, () => withKernel(async (k, ns) => {
  const tun = await k.openTun({ name: 'flannel0' })
  assert.equal(tun.fds.length, 1)
  const l = ns.ipJson<IpLink[]>(['-d', 'link', 'show', 'flannel0'])[0] as IpLink
  assert.equal(l.linkinfo?.info_kind, 'tun')
  assert.equal((l.linkinfo?.info_data as { type?: string; pi?: boolean })?.type, 'tun')
  assert.equal((l.linkinfo?.info_data as { pi?: boolean })?.pi, false)
  for (const fd of tun.fds) {
    const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0'
    assert.ok((parseInt(flags, 8) & 0o4000) !== 0, 'O_NONBLOCK set')
  }
  assert.equal((await k.getLink('flannel0'))?.index, tun.index)
  tun.close()
  assert.equal(await k.getLink('flannel0'), undefined)
  const mq = await k.openTun({ name: 'flannel1', multiQueue: true, queues: 3 })
  assert.equal(mq.fds.length, 3)
  const info = ns.ipJson<IpLink[]>(['-d', 'link', 'show', 'flannel1'])[0]?.linkinfo?.info_data as { multi_queue?: boolean }
  assert.equal(info?.multi_queue, true)
  mq.close()
  assert.equal(await k.getLink('flannel1'), undefined)
}))

test('errors name the operation, the object and the errno', { skip }, () => withKernel(async (k) => {
  const link = await k.createVxlan({ name: 'flannel.1', vni: 1, port: 0, learning: false, gbp: false })
  await k.setLink(link.index, { up: true })
  await assert.rejects(k.replaceRoute({ dst: net('10.5.3.0/24'), gateway: ip('10.5.3.0'), index: link.index }), {
    name: 'KernelError', message: 'replace route 10.5.3.0/24 via 10.5.3.0 dev flannel.1: ENETUNREACH',
  })
}))

test('auto-batched requests: each failure reaches its own caller, the rest succeed', { skip }, () => withKernel(async (k) => {
  const link = await k.createVxlan({ name: 'flannel.1', vni: 1, port: 0, learning: false, gbp: false })
  await k.setLink(link.index, { up: true })
  const routes: Promise<void>[] = []
  for (let i = 0; i < 300; i++) {
    const index = i % 7 === 3 || i === 299 ? 4242 : link.index
    routes.push(k.replaceRoute({ dst: net(`10.${100 + (i >> 8)}.${i & 0xff}.0/24`), index }))
  }
  const results = await Promise.allSettled(routes)
  results.forEach((r, i) => {
    const bad = i % 7 === 3 || i === 299
    assert.equal(r.status, bad ? 'rejected' : 'fulfilled', `request ${i}`)
    if (r.status === 'rejected') assert.match(String(r.reason.message), /ENODEV$/)
  })
  const listed = await k.listRoutes({ family: 4, index: link.index })
  assert.equal(listed.length, results.filter((r) => r.status === 'fulfilled').length)
}))

test('oracle: vxlan on an underlay device (dev) and appendFdb', { skip }, () => withKernel(async (k, ns) => {
  ns.exec('ip', ['link', 'add', 'wtul0', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'wtul1', 'mtu', '9000'])
  const under = await k.getLink('wtul0')
  assert.equal(under?.kind, 'veth')
  const link = await k.createVxlan({ name: 'flannel.1', vni: 1, port: 0, learning: true, gbp: false, local: ip('192.0.2.10'), parentIndex: under?.index })
  const info = ns.ipJson<IpLink[]>(['-d', 'link', 'show', 'flannel.1'])[0]?.linkinfo?.info_data
  assert.equal(info?.link, 'wtul0')
  assert.equal(info?.learning, true)
  assert.equal(link.vxlan?.parentIndex, under?.index)
  // Without an explicit MTU the kernel derives it from the underlay: 9000 - 50.
  assert.equal(link.mtu, 8950)
  await k.setLink(link.index, { up: true })
  await k.appendFdb({ index: link.index, mac: '00:00:00:00:00:00', dst: ip('192.0.2.20') })
  await k.appendFdb({ index: link.index, mac: '00:00:00:00:00:00', dst: ip('192.0.2.30') })
  const fdb = JSON.parse(ns.exec('bridge', ['-json', 'fdb', 'show', 'dev', 'flannel.1'])) as { mac: string; dst: string }[]
  assert.deepEqual(fdb.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst).sort(), ['192.0.2.20', '192.0.2.30'])
}))
