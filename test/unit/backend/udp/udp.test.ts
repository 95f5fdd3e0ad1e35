/**
 * The udp backend against MemoryKernel with its fd-level effects replaced: flannel0 and the
 * lease as flannel makes them, and the peer table the data path receives from lease events.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { udp, udpBackend, TUN_QUEUE_LEN, type UdpIo } from '../../../../src/backend/udp/udp.ts'
import type { DataPathOptions, UdpCounters } from '../../../../src/backend/udp/data-path.ts'
import type { WorkerPeer } from '../../../../src/backend/udp/data-path-worker.ts'
import type { UdpNetwork } from '../../../../src/backend/udp/udp-network.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { formatCidr, formatIp } from '../../../../src/ip/ip.ts'
import { config, FakeSubnetManager, host, lease, settle, until } from '../backend-fixtures.ts'

class FakeDataPath {
  tables: WorkerPeer[][] = []
  stopped = false
  error: Error | undefined = undefined
  c: UdpCounters = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, icmpSent: 0, gsoMessages: 0, groDatagrams: 0, drops: { short: 0, notIpv4: 0, badIhl: 0, badLength: 0, ttl: 0, noRoute: 0, unknownSource: 0, notLocal: 0, ioError: 0 } }
  private exit: (code: number) => void = () => {}
  readonly done = new Promise<number>((resolve) => { this.exit = resolve })
  constructor(readonly options: DataPathOptions) {}
  /** Simulates the worker dying with an error. */
  die(err: Error): void { this.error = err; this.exit(1) }
  setPeers(peers: readonly WorkerPeer[]): void { this.tables.push([...peers]) }
  counters(): UdpCounters { return this.c }
  async stop(): Promise<void> { this.stopped = true }
  get last(): string[] { return (this.tables.at(-1) ?? []).map((p) => `${p.net.toString(16)}/${p.prefix}>${p.ip.toString(16)}:${p.port}`) }
}

async function setup(opts: { own?: string; mtu?: number } = {}) {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24', mtu: opts.mtu ?? 1500 })
  const sm = new FakeSubnetManager({ subnet: opts.own ?? '10.5.1.0/24' })
  const logger = new MemoryLogger()
  const clock = new FakeClock()
  const calls: string[] = []
  let dp: FakeDataPath | undefined
  const started: FakeDataPath[] = []
  const io: UdpIo = {
    openSocket: (addr, port) => { calls.push(`open ${[...addr].join('.')}:${port}`); return 42 },
    setTxQueueLen: (fd, dev, len) => { calls.push(`qlen ${fd} ${dev} ${len}`) },
    closeFd: (fd) => { calls.push(`close ${fd}`) },
    startDataPath: (o) => { dp = new FakeDataPath(o); started.push(dp); return dp },
  }
  const backend = udpBackend({ port: 8285 }, { subnetManager: sm, extIface, kernel, logger, clock }, io)
  return { kernel, sm, logger, clock, calls, backend, started, dataPath: () => dp as FakeDataPath }
}

test('registerNetwork: lease with PublicIP only, flannel0 as flannel makes it, socket on the interface address', async () => {
  const s = await setup()
  const ac = new AbortController()
  const network = await s.backend.registerNetwork(config({ type: 'udp' }), ac.signal)
  assert.deepEqual(s.sm.acquired, [{ publicIP: { family: 4, value: 0xc0a80102n }, backendType: '' }])
  assert.equal(network.mtu, 1472)
  const snap = s.kernel.snapshot()
  const tun = snap.links.find((l) => l.name === 'flannel0')
  assert.ok(tun)
  assert.equal(tun.kind, 'tun')
  assert.equal(tun.mtu, 1472)
  assert.equal(tun.up, true)
  assert.deepEqual(snap.addrs.filter((a) => a.index === tun.index).map((a) => `${formatIp(a.ip)}/${a.prefix}`), ['10.5.1.0/32'])
  const routes = snap.routes.filter((r) => r.index === tun.index && r.dst.prefix === 16)
  assert.deepEqual(routes.map((r) => formatCidr(r.dst)), ['10.5.0.0/16'])
  assert.equal(snap.sysctls['net/ipv4/conf/flannel0/accept_local'], '1')
  assert.equal(snap.sysctls['net/ipv6/conf/flannel0/disable_ipv6'], '1')
  assert.deepEqual(s.calls, ['open 192.168.1.2:8285', `qlen 42 flannel0 ${TUN_QUEUE_LEN}`])
  ac.abort()
})

test('registerNetwork refuses dual-stack and IPv6-only networks', async () => {
  const s = await setup()
  await assert.rejects(s.backend.registerNetwork(config({ type: 'udp', v4: '10.5.0.0/16', v6: 'fd00::/56' }), new AbortController().signal), (e) => isWeftError(e, 'BACKEND_UNSUPPORTED'))
  await assert.rejects(s.backend.registerNetwork(config({ type: 'udp', v6: 'fd00::/56' }), new AbortController().signal), /IPv4 only/)
})

test('run: snapshot and events become peer tables; bad leases refused with a reason; stop releases', async () => {
  const s = await setup()
  const ac = new AbortController()
  const network = (await s.backend.registerNetwork(config({ type: 'udp' }), ac.signal)) as UdpNetwork
  const running = network.run(ac.signal)
  const dp = s.dataPath()
  assert.equal(dp.options.tunAddr, 0x0a050100)
  assert.equal(dp.options.localNet, 0x0a050100)
  assert.equal(dp.options.localPrefix, 24)
  assert.equal(dp.options.udpFd, 42)
  assert.equal(dp.options.mtu, 1472)

  const a = lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', type: '' })
  // Not type-filtered: flannel's udp programs whatever the store says.
  const b = lease({ subnet: '10.5.3.0/24', publicIP: '192.168.1.4', type: 'vxlan' })
  s.sm.snapshot(a, b)
  await until(() => dp.tables.length >= 1)
  assert.deepEqual(dp.last, ['a050200/24>c0a80103:8285', 'a050300/24>c0a80104:8285'])

  const overlapOwn = lease({ subnet: '10.5.1.0/24', publicIP: '192.168.1.9', type: '' })
  const outside = lease({ subnet: '10.6.0.0/24', publicIP: '192.168.1.10', type: '' })
  const ownIp = lease({ subnet: '10.5.4.0/24', publicIP: '192.168.1.2', type: '' })
  s.sm.added(overlapOwn, outside, ownIp)
  await until(() => s.logger.find('refusing lease').length === 3)
  const reasons = s.logger.find('refusing lease').map((e) => String(e.fields?.reason))
  assert.match(reasons.join('\n'), /overlaps this host's subnet/)
  assert.match(reasons.join('\n'), /outside the network/)
  assert.match(reasons.join('\n'), /this host's own public IP/)
  assert.deepEqual(dp.last, ['a050200/24>c0a80103:8285', 'a050300/24>c0a80104:8285'])

  // A moved peer replaces its entry; a removal drops it.
  s.sm.added(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.33', type: '' }))
  await until(() => dp.last.includes('a050200/24>c0a80121:8285'))
  s.sm.removed(b)
  await until(() => dp.last.length === 1)
  assert.deepEqual(dp.last, ['a050200/24>c0a80121:8285'])
  assert.ok(s.logger.find('subnet removed').length >= 1)

  ac.abort()
  await running
  assert.equal(dp.stopped, true)
  assert.ok(s.calls.includes('close 42'), 'socket closed after the worker stopped')
  assert.equal(s.kernel.snapshot().links.some((l) => l.name === 'flannel0'), false, 'closing the TUN removes flannel0')
  assert.equal(s.logger.find('udp data path stopped').length, 1)
})

test('counters: logged on the clock only when they moved, and at shutdown with non-zero drops', async () => {
  const s = await setup()
  const ac = new AbortController()
  const network = await s.backend.registerNetwork(config({ type: 'udp' }), ac.signal)
  const running = network.run(ac.signal)
  const dp = s.dataPath()
  await settle()
  await s.clock.advance(60_000)
  await settle()
  assert.equal(s.logger.find('udp data path counters').length, 0, 'nothing to report yet')
  dp.c = { ...dp.c, txPackets: 5, txBytes: 500, drops: { ...dp.c.drops, unknownSource: 7 } }
  await s.clock.advance(60_000)
  await settle()
  const lines = s.logger.find('udp data path counters')
  assert.equal(lines.length, 1)
  assert.deepEqual(lines[0]?.fields, { txPackets: 5, txBytes: 500, rxPackets: 0, rxBytes: 0, icmpSent: 0, drop_unknownSource: 7 })
  await s.clock.advance(60_000)
  await settle()
  assert.equal(s.logger.find('udp data path counters').length, 1, 'unchanged counters are not repeated')
  ac.abort()
  await running
  assert.equal(s.logger.find('udp data path stopped')[0]?.fields?.drop_unknownSource, 7)
})

test('a worker that dies is restarted with the current peers, and its counters are kept', async () => {
  const s = await setup()
  const ac = new AbortController()
  const network = (await s.backend.registerNetwork(config({ type: 'udp' }), ac.signal)) as UdpNetwork
  const running = network.run(ac.signal)
  const first = s.dataPath()
  s.sm.snapshot(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', type: '' }))
  await until(() => first.tables.length === 1)
  first.c = { ...first.c, rxPackets: 3 }
  first.die(new Error('boom'))
  await settle()
  assert.equal(s.logger.find('udp data path worker exited; restarting').length, 1)
  assert.equal(first.stopped, true)
  await s.clock.advance(100)
  await until(() => s.started.length === 2)
  const second = s.dataPath()
  assert.deepEqual(second.last, ['a050200/24>c0a80103:8285'], 'peers handed to the new worker')
  second.c = { ...second.c, rxPackets: 2 }
  assert.equal(network.counters()?.rxPackets, 5)
  ac.abort()
  await running
  assert.equal(second.stopped, true)
  assert.equal(s.logger.find('udp data path stopped')[0]?.fields?.rxPackets, 5)
})

test('the real factory refuses a kernel without TUN fds (MemoryKernel) before opening sockets, and cleans up', async () => {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  const backend = udp({ port: 8285 }, { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  await assert.rejects(backend.registerNetwork(config({ type: 'udp' }), new AbortController().signal), (e) => isWeftError(e, 'BACKEND_UNSUPPORTED') && /real TUN device/.test((e as Error).message))
  assert.equal(kernel.snapshot().links.some((l) => l.name === 'flannel0'), false, 'flannel0 closed again')
})

test('flannel0 deleted under a running daemon: the worker dies, the device comes back configured, forwarding resumes', async () => {
  const s = await setup()
  const ac = new AbortController()
  const network = await s.backend.registerNetwork(config({ type: 'udp' }), ac.signal)
  const running = network.run(ac.signal)
  const first = s.dataPath()
  const before = await s.kernel.getLink('flannel0')
  assert.ok(before)
  await s.kernel.deleteLink(before.index)
  first.die(new Error('the flannel0 file descriptor failed (device deleted?)'))
  await settle()
  await s.clock.advance(100)
  await until(() => s.started.length === 2)
  const after = await s.kernel.getLink('flannel0')
  assert.ok(after && after.index !== before.index, 'a new flannel0')
  assert.equal(after.mtu, 1472)
  assert.equal(after.up, true)
  const snap = s.kernel.snapshot()
  assert.deepEqual(snap.addrs.filter((a) => a.index === after.index).map((a) => `${formatIp(a.ip)}/${a.prefix}`), ['10.5.1.0/32'])
  assert.ok(snap.routes.some((r) => r.index === after.index && formatCidr(r.dst) === '10.5.0.0/16'))
  assert.equal(s.calls.filter((c) => c.startsWith('qlen')).length, 2, 'queue length set again')
  assert.equal(s.logger.find('flannel0 is gone; recreating it').length, 1)
  ac.abort()
  await running
})

test('a port already in use is reported with the address and port, and flannel0 is closed again', async () => {
  const s = await setup()
  const backend = udpBackend({ port: 8285 }, { subnetManager: s.sm, extIface: (await host({ v4: '192.168.1.2/24' })).extIface, kernel: s.kernel, logger: s.logger, clock: s.clock }, {
    openSocket: () => { throw new Error('bind 192.168.1.2:8285: EADDRINUSE') },
    setTxQueueLen: () => {},
    closeFd: () => {},
  })
  await assert.rejects(backend.registerNetwork(config({ type: 'udp' }), new AbortController().signal), (e) => isWeftError(e, 'KERNEL_OP_FAILED') && /failed to bind the UDP socket to 192\.168\.1\.2:8285: .*EADDRINUSE/.test((e as Error).message))
  assert.equal(s.kernel.snapshot().links.some((l) => l.name === 'flannel0'), false)
})
