/**
 * The udp backend's forwarding loop, run in a worker thread so the main thread (lease watch,
 * renewal) is never starved by traffic. It binds read/write/poll/recvmmsg/sendmmsg with koffi
 * and works on the raw fds opened by the main thread:
 *
 * - poll(TUN, UDP socket, wake eventfd); then alternate batches: up to `batch` TUN reads sent
 *   with one sendmmsg, and one recvmmsg of up to `batch` datagrams written to the TUN, until both
 *   are empty. Bounded batches per direction mean a UDP flood cannot starve TUN → UDP.
 * - All packet memory (slots, mmsghdr/iovec/sockaddr arrays) is allocated once; the kernel
 *   writes into it in place, so the hot loop allocates nothing.
 * - The peer table arrives as whole snapshots over a MessagePort, read synchronously
 *   (receiveMessageOnPort) when the main thread bumps the generation and kicks the eventfd.
 * - Counters are kept locally and copied into a SharedArrayBuffer after each burst.
 *
 * The worker is evaluated from source (`workerSource()`): the bundle has one file per
 * executable, so there is no separate worker file to point at. Keep `workerMain`
 * self-contained: it may use only its parameters and globals. That is also why this file is
 * longer than the usual 300 lines: the loop is one function, serialised whole.
 */
import type { MessagePort } from 'node:worker_threads'
import { packetSource } from './packet.ts'

/** Counter slots in the shared Float64Array. */
export const COUNTER = {
  txPackets: 0,
  txBytes: 1,
  rxPackets: 2,
  rxBytes: 3,
  icmpSent: 4,
  /** Drops start here: index = dropBase + DropReason code (1..9). */
  dropBase: 4,
  /** Messages sent with more than one segment (UDP GSO). */
  gsoMessages: 14,
  /** Datagrams received coalesced (UDP GRO). */
  groDatagrams: 15,
  size: 16,
} as const

/** Control slots in the shared Int32Array. */
/** `gsoOff`: set by the worker when UDP GSO failed and it fell back to one datagram per message. */
export const CONTROL = { stop: 0, generation: 1, gsoOff: 2, size: 3 } as const

/** A peer as the worker sees it: host-order numbers. */
export interface WorkerPeer {
  readonly net: number
  readonly prefix: number
  readonly ip: number
  readonly port: number
}

export interface WorkerInit {
  readonly koffiPath: string
  readonly tunFd: number
  readonly udpFd: number
  readonly wakeFd: number
  /** flannel0's address (ICMP source), host order. */
  readonly tunAddr: number
  /** This host's subnet: packets from peers must be addressed inside it. */
  readonly localNet: number
  readonly localPrefix: number
  readonly slotSize: number
  readonly batch: number
  /** Coalesce same-size packets to one peer into one UDP_SEGMENT send (Linux ≥ 4.18). */
  readonly gso: boolean
  /** Receive coalesced datagrams (UDP_GRO, Linux ≥ 5.0) and split them back into packets. */
  readonly gro: boolean
  readonly control: SharedArrayBuffer
  readonly counters: SharedArrayBuffer
  readonly port: MessagePort
}

interface PacketFns {
  checkIpv4(buf: Uint8Array, len: number): number
  ipv4Dst(buf: Uint8Array): number
  decrementTtl(buf: Uint8Array): boolean
  mayAnswerWithIcmp(buf: Uint8Array, len: number): boolean
  buildNetUnreachable(offender: Uint8Array, len: number, tunAddr: number, out: Uint8Array): number
}

type Req = (id: string) => any // eslint-disable-line @typescript-eslint/no-explicit-any

/** The forwarding loop; returns when the stop flag is set. */
function workerMain(p: PacketFns, req: Req, init: WorkerInit): void {
  const { checkIpv4, ipv4Dst, decrementTtl, mayAnswerWithIcmp, buildNetUnreachable } = p
  const { receiveMessageOnPort } = req('node:worker_threads')
  const koffi = req(init.koffiPath)
  const lib = koffi.load('libc.so.6')
  const read = lib.func('long read(int, void *, unsigned long)')
  const write = lib.func('long write(int, void *, unsigned long)')
  const poll = lib.func('int poll(void *, unsigned long, int)')
  const recvmmsg = lib.func('int recvmmsg(int, void *, unsigned int, int, void *)')
  const sendmmsg = lib.func('int sendmmsg(int, void *, unsigned int, int)')
  const { tunFd, udpFd, wakeFd, tunAddr, batch: B, slotSize: S } = init
  const localMask = init.localPrefix === 0 ? 0 : (0xffffffff << (32 - init.localPrefix)) >>> 0
  const localNet = init.localNet >>> 0
  const control = new Int32Array(init.control)
  const shared = new Float64Array(init.counters)
  const c = new Float64Array(shared.length)
  const DROP = 4
  const inc = (i: number, n: number): void => { c[i] = (c[i] as number) + n }

  // Packet memory and the msghdr arrays pointing into it (x86-64/arm64 layouts).
  const MSG = 64
  const makeRing = (S: number): { slots: Buffer[]; msgs: Buffer; names: Buffer; iovs: Buffer; nameAt: bigint[]; iovAt: bigint[]; ctrl: Buffer; ctrlAt: bigint[] } => {
    const data = Buffer.alloc(B * S)
    const msgs = Buffer.alloc(B * MSG)
    const names = Buffer.alloc(B * 16)
    const iovs = Buffer.alloc(B * 16)
    const dataAt = BigInt(koffi.address(data))
    const namesAt = BigInt(koffi.address(names))
    const iovsAt = BigInt(koffi.address(iovs))
    const slots: Buffer[] = []
    // One cmsg per message: UDP_SEGMENT (SOL_UDP 17, type 103) with a u16 segment size.
    const ctrl = Buffer.alloc(B * 24)
    const ctrlBase = BigInt(koffi.address(ctrl))
    const nameAt: bigint[] = []
    const iovAt: bigint[] = []
    const ctrlAt: bigint[] = []
    for (let i = 0; i < B; i++) {
      nameAt.push(namesAt + BigInt(i * 16))
      iovAt.push(iovsAt + BigInt(i * 16))
      ctrlAt.push(ctrlBase + BigInt(i * 24))
      ctrl.writeBigUInt64LE(18n, i * 24)
      ctrl.writeInt32LE(17, i * 24 + 8)
      ctrl.writeInt32LE(103, i * 24 + 12)
      slots.push(data.subarray(i * S, (i + 1) * S))
      iovs.writeBigUInt64LE(dataAt + BigInt(i * S), i * 16)
      iovs.writeUInt32LE(S, i * 16 + 8)
      msgs.writeBigUInt64LE(namesAt + BigInt(i * 16), i * MSG)
      msgs.writeUInt32LE(16, i * MSG + 8)
      msgs.writeBigUInt64LE(iovsAt + BigInt(i * 16), i * MSG + 16)
      msgs.writeUInt32LE(1, i * MSG + 24)
      names.writeUInt16LE(2, i * 16) // AF_INET
    }
    return { slots, msgs, names, iovs, nameAt, iovAt, ctrl, ctrlAt }
  }
  const setsockopt = lib.func('int setsockopt(int, int, int, void *, int)')
  const one = Buffer.alloc(4)
  one.writeInt32LE(1)
  // UDP_GRO (SOL_UDP 17, 104): the kernel may hand us up to 64 KiB of same-size datagrams at once.
  const gro = init.gro && Number(setsockopt(udpFd, 17, 104, one, 4)) === 0
  const tx = makeRing(S)
  const rx = makeRing(gro ? 65536 : S)
  if (gro) {
    for (let i = 0; i < B; i++) {
      rx.msgs.writeBigUInt64LE(rx.ctrlAt[i] as bigint, i * MSG + 32)
      rx.msgs.writeUInt32LE(24, i * MSG + 40)
    }
  }
  const icmp = Buffer.alloc(128)
  const pfd = Buffer.alloc(24)
  pfd.writeInt32LE(tunFd, 0)
  pfd.writeInt16LE(1, 4)
  pfd.writeInt32LE(udpFd, 8)
  pfd.writeInt16LE(1, 12)
  pfd.writeInt32LE(wakeFd, 16)
  pfd.writeInt16LE(1, 20)
  const wakeBuf = Buffer.alloc(8)

  // Peer table: one Map per prefix length (leases normally share one), longest prefix first.
  let tables: Array<{ mask: number; map: Map<number, WorkerPeer> }> = []
  let sources = new Set<number>()
  let generation = -1
  /** Applies the newest queued snapshot; false when none has arrived yet. */
  const loadPeers = (): boolean => {
    let msg: { message: { peers: WorkerPeer[] } } | undefined
    let last: WorkerPeer[] | undefined
    while ((msg = receiveMessageOnPort(init.port))) last = msg.message.peers
    if (!last) return false
    const byPrefix = new Map<number, Map<number, WorkerPeer>>()
    const nextSources = new Set<number>()
    for (const peer of last) {
      let m = byPrefix.get(peer.prefix)
      if (!m) byPrefix.set(peer.prefix, (m = new Map()))
      m.set(peer.net >>> 0, peer)
      nextSources.add(peer.ip >>> 0)
    }
    tables = [...byPrefix.entries()].sort((a, b) => b[0] - a[0]).map(([prefix, map]) => ({ mask: prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0, map }))
    sources = nextSources
    return true
  }
  const lookup = (dst: number): WorkerPeer | undefined => {
    for (let i = 0; i < tables.length; i++) {
      const t = tables[i] as { mask: number; map: Map<number, WorkerPeer> }
      const hit = t.map.get((dst & t.mask) >>> 0)
      if (hit) return hit
    }
    return undefined
  }

  let gso = init.gso
  const txPeer: Array<WorkerPeer | undefined> = new Array(B).fill(undefined)
  const txLen = new Int32Array(B)
  const groupFirst = new Int32Array(B)
  const groupSize = new Int32Array(B)

  /**
   * Lays out msgs[0..m) over slots [0, n): with GSO, a run of packets to one peer with one
   * length (plus an optional shorter last one) becomes one message whose iovecs the kernel
   * cuts back into one datagram per packet, so the wire is unchanged.
   */
  const layout = (n: number): number => {
    let m = 0
    for (let i = 0; i < n;) {
      const len0 = txLen[i] as number
      const p0 = txPeer[i]
      let k = 1
      if (gso) {
        const maxSeg = Math.min(64, Math.floor(65000 / len0))
        while (i + k < n && k < maxSeg && txPeer[i + k] === p0 && txLen[i + k] === len0) k++
        if (k > 1 && i + k < n && k < maxSeg && txPeer[i + k] === p0 && (txLen[i + k] as number) < len0) k++
      }
      const mo = m * MSG
      const msgs = tx.msgs
      msgs.writeBigUInt64LE(tx.nameAt[i] as bigint, mo)
      msgs.writeBigUInt64LE(tx.iovAt[i] as bigint, mo + 16)
      msgs.writeUInt32LE(k, mo + 24)
      if (k > 1) {
        inc(14, 1)
        msgs.writeBigUInt64LE(tx.ctrlAt[m] as bigint, mo + 32)
        msgs.writeUInt32LE(24, mo + 40)
        tx.ctrl.writeUInt16LE(len0, m * 24 + 16)
      } else {
        msgs.writeUInt32LE(0, mo + 40)
      }
      groupFirst[m] = i
      groupSize[m] = k
      m++
      i += k
    }
    return m
  }

  /** Lays out plain messages for slots [from, n) after GSO was turned off mid-batch. */
  const relayout = (from: number, n: number): number => {
    let m = 0
    for (let i = from; i < n; i++, m++) {
      const mo = m * MSG
      tx.msgs.writeBigUInt64LE(tx.nameAt[i] as bigint, mo)
      tx.msgs.writeBigUInt64LE(tx.iovAt[i] as bigint, mo + 16)
      tx.msgs.writeUInt32LE(1, mo + 24)
      tx.msgs.writeUInt32LE(0, mo + 40)
      groupFirst[m] = i
      groupSize[m] = 1
    }
    return m
  }

  const tunToUdp = (): number => {
    let n = 0
    let reads = 0
    while (n < B) {
      const buf = tx.slots[n] as Buffer
      const len = Number(read(tunFd, buf, S))
      if (len < 0) break
      reads++
      const bad = checkIpv4(buf, len)
      if (bad !== 0) { inc(DROP + bad, 1); continue }
      const peer = lookup(ipv4Dst(buf))
      if (peer === undefined) {
        inc(DROP + 6, 1)
        if (mayAnswerWithIcmp(buf, len)) {
          const l = buildNetUnreachable(buf, len, tunAddr, icmp)
          if (l > 0 && Number(write(tunFd, icmp, l)) === l) inc(4, 1)
        }
        continue
      }
      if (!decrementTtl(buf)) { inc(DROP + 5, 1); continue }
      tx.iovs.writeUInt32LE(len, n * 16 + 8)
      txLen[n] = len
      txPeer[n] = peer
      const o = n * 16
      const names = tx.names
      names[o + 2] = peer.port >>> 8
      names[o + 3] = peer.port & 0xff
      names[o + 4] = peer.ip >>> 24
      names[o + 5] = (peer.ip >>> 16) & 0xff
      names[o + 6] = (peer.ip >>> 8) & 0xff
      names[o + 7] = peer.ip & 0xff
      inc(0, 1)
      inc(1, len)
      n++
    }
    if (n === 0) return reads
    let m = layout(n)
    let sent = 0
    while (sent < m) {
      const r = Number(sendmmsg(udpFd, sent === 0 ? tx.msgs : tx.msgs.subarray(sent * MSG), m - sent, 0))
      // EIO: no checksum offload on the route's device; EINVAL/EOPNOTSUPP: no UDP_SEGMENT.
      if (r <= 0 && gso && (groupSize[sent] as number) > 1 && [5, 22, 95].includes(koffi.errno())) {
        // No UDP GSO on this path (old kernel, no checksum offload): one datagram per message.
        gso = false
        control[2] = 1
        m = relayout(groupFirst[sent] as number, n)
        sent = 0
        continue
      }
      if (r <= 0) {
        // Count what did not leave as I/O drops, and take it back out of the sent totals.
        for (let g = sent; g < m; g++) {
          for (let i = groupFirst[g] as number, e = i + (groupSize[g] as number); i < e; i++) { inc(0, -1); inc(1, -(txLen[i] as number)); inc(DROP + 9, 1) }
        }
        break
      }
      sent += r
    }
    return reads
  }

  const udpToTun = (): number => {
    const r = Number(recvmmsg(udpFd, rx.msgs, B, 0x40 /* MSG_DONTWAIT */, null))
    if (r <= 0) return 0
    const names = rx.names
    for (let i = 0; i < r; i++) {
      const mo = i * MSG
      // With UDP_GRO: the segment size, when the kernel coalesced (cmsg SOL_UDP/UDP_GRO).
      let seg = 0
      if (gro) {
        if (rx.msgs.readUInt32LE(mo + 40) >= 20 && rx.ctrl.readInt32LE(i * 24 + 8) === 17 && rx.ctrl.readInt32LE(i * 24 + 12) === 104) seg = rx.ctrl.readInt32LE(i * 24 + 16)
        rx.msgs.writeUInt32LE(24, mo + 40)
      }
      const o = i * 16
      const src = ((names[o + 4] as number) << 24 | (names[o + 5] as number) << 16 | (names[o + 6] as number) << 8 | (names[o + 7] as number)) >>> 0
      const slot = rx.slots[i] as Buffer
      const total = rx.msgs.readUInt32LE(mo + 56)
      // Drops count datagrams as sent, also when GRO handed several over as one.
      const datagrams = seg > 0 && seg < total ? Math.ceil(total / seg) : 1
      if (!sources.has(src)) { inc(DROP + 7, datagrams); continue }
      // MSG_TRUNC: the datagram was longer than a slot.
      if ((rx.msgs.readInt32LE(mo + 48) & 0x20) !== 0) { inc(DROP + 4, datagrams); continue }
      if (seg <= 0 || seg >= total) { deliver(slot, total); continue }
      // Coalesced: every segment but the last is `seg` bytes, each one whole IPv4 packet.
      inc(15, 1)
      for (let off = 0; off < total; off += seg) deliver(slot.subarray(off, Math.min(total, off + seg)), Math.min(seg, total - off))
    }
    return r
  }

  /** One packet from a peer: validate, decrement TTL, write to the TUN. */
  const deliver = (buf: Buffer, len: number): void => {
    const bad = checkIpv4(buf, len)
    if (bad !== 0) { inc(DROP + bad, 1); return }
    if (((ipv4Dst(buf) & localMask) >>> 0) !== localNet) { inc(DROP + 8, 1); return }
    if (!decrementTtl(buf)) { inc(DROP + 5, 1); return }
    if (Number(write(tunFd, buf, len)) !== len) { inc(DROP + 9, 1); return }
    inc(2, 1)
    inc(3, len)
  }


  for (;;) {
    if (Atomics.load(control, 0) !== 0) break
    const gen = Atomics.load(control, 1)
    // The generation is bumped after the post, so a snapshot is normally queued by now; if not,
    // keep the old generation and look again next time round.
    if (gen !== generation && loadPeers()) generation = gen
    const ready = Number(poll(pfd, 3, 250))
    if (ready <= 0) continue
    // POLLERR/POLLHUP/POLLNVAL on the TUN (flannel0 deleted): polling again would spin.
    if ((pfd.readInt16LE(6) & 0x38) !== 0) {
      for (let i = 0; i < c.length; i++) shared[i] = c[i] as number
      init.port.close()
      throw new Error('the flannel0 file descriptor failed (device deleted?)')
    }
    if ((pfd.readInt16LE(22) & 1) !== 0) read(wakeFd, wakeBuf, 8)
    for (let round = 0; round < 64; round++) {
      const moved = tunToUdp() + udpToTun()
      if (moved === 0) break
    }
    for (let i = 0; i < c.length; i++) shared[i] = c[i] as number
  }
  for (let i = 0; i < c.length; i++) shared[i] = c[i] as number
  init.port.close()
}

/** Source text for `new Worker(src, { eval: true, workerData })`. */
export function workerSource(): string {
  return [
    // tsx/esbuild may wrap named functions with __name(); the worker has no such helper.
    'var __name = (f) => f;',
    packetSource(),
    `const { workerData } = require('node:worker_threads');`,
    `(${workerMain.toString()})({ checkIpv4, ipv4Dst, decrementTtl, mayAnswerWithIcmp, buildNetUnreachable }, require, workerData);`,
  ].join('\n')
}
