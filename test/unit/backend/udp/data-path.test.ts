/**
 * The forwarding worker on real fds without root: a non-blocking AF_UNIX datagram socketpair
 * stands in for the TUN (same packet-per-read semantics) and the UDP side runs on loopback
 * (127.0.0.1 = us, 127.0.0.2 = a peer, 127.0.0.3 = a stranger).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { existsSync } from 'node:fs'
import koffi from 'koffi'
import { UdpDataPath } from '../../../../src/backend/udp/data-path.ts'
import { closeFd, openUdpSocket } from '../../../../src/kernel/linux/udp-io.ts'
import { inetChecksum } from '../../../../src/backend/udp/packet.ts'
import { until } from '../../../helpers/wait.ts'

const lib = koffi.load('libc.so.6')
const socketpair = lib.func('int socketpair(int, int, int, _Out_ int *)')
const recv = lib.func('long recv(int, void *, unsigned long, int)')
const send = lib.func('long send(int, void *, unsigned long, int)')

function tunPair(type = 2 /* SOCK_DGRAM */): [number, number] {
  const fds = [0, 0]
  assert.equal(socketpair(1 /* AF_UNIX */, type | 0o4000 /* NONBLOCK */, 0, fds), 0)
  return [fds[0] as number, fds[1] as number]
}

function packet(dst: number[], ttl = 64, src = [10, 5, 1, 5], payloadLen = 12): Buffer {
  const buf = Buffer.alloc(20 + payloadLen)
  buf[0] = 0x45
  buf.writeUInt16BE(buf.length, 2)
  buf[8] = ttl
  buf[9] = 17
  buf.set(src, 12)
  buf.set(dst, 16)
  for (let i = 20; i < buf.length; i++) buf[i] = i
  buf.writeUInt16BE(inetChecksum(buf, 0, 20), 10)
  return buf
}

async function readTun(fd: number, ms = 2000): Promise<Buffer> {
  const buf = Buffer.alloc(2048)
  const end = Date.now() + ms
  for (;;) {
    const n = Number(recv(fd, buf, buf.length, 0x40))
    if (n >= 0) return buf.subarray(0, n)
    if (Date.now() > end) throw new Error('nothing read from the TUN side')
    await new Promise((r) => setTimeout(r, 5))
  }
}

async function bindSocket(address: string, port: number): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4')
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(port, address, () => resolve()) })
  return s
}


for (const gso of [true, false]) test(`worker (${gso ? "UDP GSO + GRO" : "one datagram per message"}): TUN → peer with TTL−1, net unreachable, peer → TUN, every drop counted`, { timeout: 20_000 }, async () => {
  const [tun, tunPeer] = tunPair()
  let port = 0
  let udpFd = -1
  for (let i = 0; i < 20 && udpFd < 0; i++) {
    port = 20000 + Math.floor(Math.random() * 40000)
    try { udpFd = openUdpSocket(Uint8Array.from([127, 0, 0, 1]), port, 1 << 20) } catch { /* in use: try another */ }
  }
  assert.ok(udpFd >= 0)
  const peer = await bindSocket('127.0.0.2', port)
  const stranger = await bindSocket('127.0.0.3', 0)
  const got: Buffer[] = []
  peer.on('message', (m, rinfo) => { if (rinfo.port === port) got.push(m) })
  const dp = new UdpDataPath({ tunFd: tun, udpFd, tunAddr: 0x0a050100, localNet: 0x0a050100, localPrefix: 24, mtu: 1472, batch: 8, gso, gro: gso })
  try {
    dp.setPeers([{ net: 0x0a050200, prefix: 24, ip: 0x7f000002, port }])
    await new Promise((r) => setTimeout(r, 100))

    // TUN → UDP: to the peer's address and our port, TTL decremented, checksum still valid.
    const out = packet([10, 5, 2, 7], 64)
    assert.equal(Number(send(tunPeer, out, out.length, 0)), out.length)
    await until(() => got.length === 1)
    const sent = got[0] as Buffer
    assert.equal(sent.length, out.length)
    assert.equal(sent[8], 63)
    assert.equal(inetChecksum(sent, 0, 20), 0)
    assert.deepEqual(sent.subarray(12), out.subarray(12))

    // A burst larger than one batch arrives whole and in order.
    for (let i = 0; i < 50; i++) { const p = packet([10, 5, 2, 8], 64, [10, 5, 1, 5], 100); p[30] = i; send(tunPeer, p, p.length, 0) }
    await until(() => got.length === 51)
    assert.deepEqual(got.slice(1).map((m) => m[30]), [...Array(50).keys()])
    assert.deepEqual(new Set(got.slice(1).map((m) => m.length)), new Set([120]), 'one datagram per packet, GSO or not')
    assert.equal(dp.gsoOff, false, gso ? 'GSO works on loopback' : 'GSO not in use')

    // No peer for the destination: ICMP net unreachable back into the TUN, from flannel0's address.
    const lost = packet([10, 5, 9, 9])
    send(tunPeer, lost, lost.length, 0)
    const icmp = await readTun(tunPeer)
    assert.equal(icmp[9], 1)
    assert.deepEqual([...icmp.subarray(12, 16)], [10, 5, 1, 0])
    assert.deepEqual([...icmp.subarray(16, 20)], [10, 5, 1, 5])
    assert.equal(icmp[20], 3)
    assert.equal(icmp[21], 0)
    // TTL 1 towards a peer: dropped.
    const dying = packet([10, 5, 2, 7], 1)
    send(tunPeer, dying, dying.length, 0)

    // UDP → TUN from the peer: TTL decremented, written whole.
    const inbound = packet([10, 5, 1, 9], 10, [10, 5, 2, 7])
    peer.send(inbound, port, '127.0.0.1')
    const delivered = await readTun(tunPeer)
    assert.equal(delivered.length, inbound.length)
    assert.equal(delivered[8], 9)
    assert.equal(inetChecksum(delivered, 0, 20), 0)

    // Drops: stranger, short, bad IHL, bad length, not for our subnet, IPv6.
    stranger.send(packet([10, 5, 1, 9]), port, '127.0.0.1')
    peer.send(Buffer.alloc(12, 0x45), port, '127.0.0.1')
    const badIhl = packet([10, 5, 1, 9]); badIhl[0] = 0x43
    peer.send(badIhl, port, '127.0.0.1')
    const badLen = packet([10, 5, 1, 9]); badLen.writeUInt16BE(999, 2)
    peer.send(badLen, port, '127.0.0.1')
    peer.send(packet([10, 5, 3, 3]), port, '127.0.0.1')
    const v6 = packet([10, 5, 1, 9]); v6[0] = 0x60
    peer.send(v6, port, '127.0.0.1')

    await until(() => {
      const d = dp.counters().drops
      return d.unknownSource === 1 && d.short === 1 && d.badIhl === 1 && d.badLength === 1 && d.notLocal === 1 && d.notIpv4 === 1 && d.ttl === 1 && d.noRoute === 1
    })
    const c = dp.counters()
    assert.equal(c.txPackets, 51)
    assert.equal(c.txBytes, 32 + 50 * 120)
    assert.equal(c.rxPackets, 1)
    assert.equal(c.rxBytes, 32)
    assert.equal(c.icmpSent, 1)
    assert.equal(c.drops.ioError, 0)

    // Peers are replaced as a whole: after removal, the same destination is unreachable.
    dp.setPeers([])
    await new Promise((r) => setTimeout(r, 100))
    send(tunPeer, out, out.length, 0)
    const again = await readTun(tunPeer)
    assert.equal(again[20], 3)
    assert.equal(got.length, 51)
  } finally {
    await dp.stop()
    assert.equal(dp.error, undefined)
    peer.close()
    stranger.close()
    closeFd(udpFd)
    closeFd(tun)
    closeFd(tunPeer)
  }
})

test('worker: a failed TUN fd (hang-up) ends the worker with an error instead of spinning', { timeout: 10_000 }, async () => {
  // SOCK_SEQPACKET reports POLLHUP once the other end closes, as a deleted TUN reports POLLERR.
  const [tun, tunPeer] = tunPair(5)
  const udpFd = openUdpSocket(Uint8Array.from([127, 0, 0, 1]), 0, 1 << 16)
  const dp = new UdpDataPath({ tunFd: tun, udpFd, tunAddr: 1, localNet: 0, localPrefix: 8, mtu: 1400 })
  try {
    await new Promise((r) => setTimeout(r, 100))
    closeFd(tunPeer)
    const code = await Promise.race([dp.done, new Promise<string>((r) => setTimeout(() => r('still running'), 3000))])
    assert.equal(code, 1)
    assert.match(String(dp.error?.message), /flannel0 file descriptor failed/)
  } finally {
    await dp.stop()
    closeFd(udpFd)
    closeFd(tun)
  }
})

test('two workers over loopback: a burst through UDP GSO and GRO arrives whole, in order, TTL −2', { timeout: 20_000 }, async () => {
  // SOCK_SEQPACKET: datagram queues of AF_UNIX are capped at 10 packets (max_dgram_qlen).
  const [tunA, tunAPeer] = tunPair(5)
  const [tunB, tunBPeer] = tunPair(5)
  let port = 0
  let fdA = -1
  let fdB = -1
  for (let i = 0; i < 20 && fdB < 0; i++) {
    port = 20000 + Math.floor(Math.random() * 40000)
    try {
      fdA = openUdpSocket(Uint8Array.from([127, 0, 0, 1]), port, 4 << 20)
      fdB = openUdpSocket(Uint8Array.from([127, 0, 0, 2]), port, 4 << 20)
    } catch {
      if (fdA >= 0) closeFd(fdA)
      fdA = -1
    }
  }
  const a = new UdpDataPath({ tunFd: tunA, udpFd: fdA, tunAddr: 0x0a050100, localNet: 0x0a050100, localPrefix: 24, mtu: 1472, gso: true, gro: true })
  const b = new UdpDataPath({ tunFd: tunB, udpFd: fdB, tunAddr: 0x0a050200, localNet: 0x0a050200, localPrefix: 24, mtu: 1472, gso: true, gro: true })
  try {
    a.setPeers([{ net: 0x0a050200, prefix: 24, ip: 0x7f000002, port }])
    b.setPeers([{ net: 0x0a050100, prefix: 24, ip: 0x7f000001, port }])
    await new Promise((r) => setTimeout(r, 100))
    // Bursts of 40: big enough to coalesce, small enough for the AF_UNIX stand-in's buffers.
    const N = 200
    const ids: number[] = []
    for (let burst = 0; burst < N / 40; burst++) {
      for (let i = burst * 40; i < (burst + 1) * 40; i++) {
        const p = packet([10, 5, 2, 9], 64, [10, 5, 1, 5], 1380)
        p.writeUInt16BE(i, 4) // IP id = sequence
        p.writeUInt16BE(0, 10)
        p.writeUInt16BE(inetChecksum(p, 0, 20), 10)
        assert.equal(Number(send(tunAPeer, p, p.length, 0)), p.length)
      }
      while (ids.length < (burst + 1) * 40) {
        const got = await readTun(tunBPeer).catch((err: Error) => { throw new Error(`${err.message} after ${ids.length}: a ${JSON.stringify(a.counters())} b ${JSON.stringify(b.counters())}`) })
        assert.equal(got.length, 1400)
        assert.equal(got[8], 62)
        assert.equal(inetChecksum(got, 0, 20), 0)
        ids.push(got.readUInt16BE(4))
      }
    }
    assert.deepEqual(ids, [...Array(N).keys()])
    assert.equal(a.gsoOff, false)
    assert.ok(a.counters().gsoMessages > 0, `sends coalesced: ${a.counters().gsoMessages}`)
    assert.ok(b.counters().groDatagrams > 0, `receives coalesced: ${b.counters().groDatagrams}`)
    assert.equal(b.counters().rxPackets, N)
    assert.equal(totalDropsOf(b), 0)
  } finally {
    await a.stop()
    await b.stop()
    for (const fd of [fdA, fdB, tunA, tunAPeer, tunB, tunBPeer]) closeFd(fd)
  }
})

function totalDropsOf(dp: UdpDataPath): number {
  return Object.values(dp.counters().drops).reduce((x, y) => x + y, 0)
}

test('stop is idempotent: the wake fd is closed once', { timeout: 10_000 }, async () => {
  const [tun, tunPeer] = tunPair()
  const udpFd = openUdpSocket(Uint8Array.from([127, 0, 0, 1]), 0, 1 << 16)
  const dp = new UdpDataPath({ tunFd: tun, udpFd, tunAddr: 1, localNet: 0, localPrefix: 8, mtu: 1400 })
  await Promise.all([dp.stop(), dp.stop()])
  // The lowest free fd is the wake fd just closed: a second close would take this socket down.
  const probe = openUdpSocket(Uint8Array.from([127, 0, 0, 1]), 0, 1 << 16)
  await dp.stop()
  assert.ok(existsSync(`/proc/self/fd/${probe}`), 'an fd reused after stop() survives another stop()')
  for (const fd of [probe, udpFd, tun, tunPeer]) closeFd(fd)
})

test('drops count datagrams even when GRO coalesced them', { timeout: 10_000 }, async () => {
  const [tun, tunPeer] = tunPair()
  let port = 0
  let udpFd = -1
  for (let i = 0; i < 20 && udpFd < 0; i++) {
    port = 20000 + Math.floor(Math.random() * 40000)
    try { udpFd = openUdpSocket(Uint8Array.from([127, 0, 0, 1]), port, 1 << 20) } catch { /* in use */ }
  }
  const dp = new UdpDataPath({ tunFd: tun, udpFd, tunAddr: 1, localNet: 0x0a050100, localPrefix: 24, mtu: 1400, gro: true })
  const stranger = await bindSocket('127.0.0.3', 0)
  try {
    await new Promise((r) => setTimeout(r, 100))
    const junk = Buffer.alloc(500, 7)
    await Promise.all(Array.from({ length: 40 }, () => new Promise<void>((res) => stranger.send(junk, port, '127.0.0.1', () => res()))))
    await until(() => dp.counters().drops.unknownSource === 40)
  } finally {
    await dp.stop()
    stranger.close()
    for (const fd of [udpFd, tun, tunPeer]) closeFd(fd)
  }
})
