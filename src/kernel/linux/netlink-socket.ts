/**
 * A NETLINK_ROUTE socket driven synchronously from the event loop. rtnetlink handles a request
 * inside sendmsg, so acks are already queued when send() returns and a dump is produced during
 * recv(): nothing here ever waits long. Requests issued in the same tick are auto-batched: one
 * send() carrying many nlmsghdrs; errors are matched back by sequence number and a single ack on
 * the last message completes the rest.
 */
import {
  AF_NETLINK, errnoName, libc, MSG_DONTWAIT, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_ROUTE, POLLIN, SO_RCVBUF,
  SO_RCVBUFFORCE, SO_SNDBUF, SO_SNDBUFFORCE, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, SOL_NETLINK, SOL_SOCKET, type Libc,
} from './libc.ts'
import {
  messageSize, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN,
  parseAttrs, parseError, parseMessages, writeMessage, type Attr, type NlMessage,
} from './netlink-codec.ts'

/** A failed netlink call: the errno name plus the kernel's extended-ack text when it sent one. */
export class NetlinkError extends Error {
  constructor(readonly errno: string, readonly extack?: string) {
    super(extack ? `${errno}: ${extack}` : errno)
    this.name = 'NetlinkError'
  }
}

interface Pending {
  readonly type: number
  readonly flags: number
  readonly header: Buffer
  readonly attrs: Attr[]
  seq: number
  readonly replies: NlMessage[]
  resolve(replies: NlMessage[]): void
  reject(err: Error): void
}

const NLM_F_ACK_TLVS = 0x200
const NLMSGERR_ATTR_MSG = 1
/** Bounded so the errors of one batch always fit in the receive buffer (ENOBUFS would drop them). */
const MAX_BATCH = 1024
const RECV_SIZE = 1 << 20
const WAIT_MS = 2000

export interface NetlinkSocketOptions {
  /** Multicast group bitmask (RTMGRP_*) for a notification socket. */
  readonly groups?: number
  readonly rcvbuf?: number
}

export class NetlinkSocket {
  readonly fd: number
  private readonly c: Libc
  private readonly recvBuf = Buffer.allocUnsafe(RECV_SIZE)
  private sendBuf = Buffer.allocUnsafe(64 * 1024)
  private queue: Pending[] = []
  private scheduled = false
  private seq = Math.floor(Math.random() * 0x7fffffff)
  private closed = false

  constructor(options: NetlinkSocketOptions = {}) {
    this.c = libc()
    const fd = this.c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE)
    if (fd < 0) throw new NetlinkError(errnoName(this.c.errno()))
    this.fd = fd
    const int = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32LE(v); return b }
    const rcv = options.rcvbuf ?? 8 << 20
    if (this.c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, int(rcv), 4) < 0) this.c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, int(rcv), 4)
    if (this.c.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, int(4 << 20), 4) < 0) this.c.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, int(4 << 20), 4)
    // Errors carry only the header back (not our request) plus the kernel's explanation.
    this.c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, int(1), 4)
    this.c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, int(1), 4)
    const addr = Buffer.alloc(12)
    addr.writeUInt16LE(AF_NETLINK, 0)
    addr.writeUInt32LE(options.groups ?? 0, 8)
    if (this.c.bind(fd, addr, 12) < 0) {
      const errno = errnoName(this.c.errno())
      this.c.close(fd)
      throw new NetlinkError(errno)
    }
  }

  /** Queues a request (NLM_F_REQUEST|NLM_F_ACK added); resolves with any data replies once acked. */
  request(type: number, flags: number, header: Buffer, attrs: Attr[]): Promise<NlMessage[]> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new NetlinkError('EBADF'))
      this.queue.push({ type, flags: flags | NLM_F_REQUEST | NLM_F_ACK, header, attrs, seq: 0, replies: [], resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        queueMicrotask(() => this.flush())
      }
    })
  }

  /** Sends everything queued now (dumps call this first, to keep the caller's order). */
  flush(): void {
    this.scheduled = false
    while (this.queue.length > 0) this.sendBatch(this.queue.splice(0, MAX_BATCH))
  }

  /** A synchronous dump; retried when the kernel flags it as interrupted by a concurrent change. */
  dump<T>(type: number, header: Buffer, attrs: Attr[], decode: (msg: NlMessage) => T | undefined): T[] {
    this.flush()
    for (let attempt = 0; ; attempt++) {
      const out: T[] = []
      const seq = this.nextSeq()
      this.sendRaw([{ type, flags: NLM_F_REQUEST | NLM_F_DUMP, header, attrs, seq }])
      let interrupted = false
      let done = false
      while (!done) {
        for (const msg of this.receive()) {
          if (msg.seq !== seq) continue
          if (msg.flags & NLM_F_DUMP_INTR) interrupted = true
          if (msg.type === NLMSG_DONE) {
            const err = parseError(msg.payload) ?? 0
            if (err < 0) throw new NetlinkError(errnoName(err))
            done = true
          } else if (msg.type === NLMSG_ERROR) {
            throw errorOf(msg)
          } else {
            const v = decode(msg)
            if (v !== undefined) out.push(v)
          }
        }
      }
      if (!interrupted || attempt >= 4) return out
    }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    const left = this.queue.splice(0)
    for (const p of left) p.reject(new NetlinkError('EBADF'))
    this.c.close(this.fd)
  }

  /** Drains whatever is queued on the socket without waiting (notification sockets). */
  drain(onMessage: (msg: NlMessage) => void): string | undefined {
    for (;;) {
      const n = this.c.recv(this.fd, this.recvBuf, RECV_SIZE, MSG_DONTWAIT)
      if (n < 0) {
        const errno = errnoName(this.c.errno())
        if (errno === 'EAGAIN') return undefined
        if (errno === 'EINTR') continue
        return errno
      }
      if (n === 0) return undefined
      for (const msg of parseMessages(this.recvBuf.subarray(0, n))) onMessage(msg)
    }
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1
    return this.seq
  }

  private sendRaw(msgs: { type: number; flags: number; header: Buffer; attrs: Attr[]; seq: number }[]): void {
    let size = 0
    for (const m of msgs) size += messageSize(m.header, m.attrs)
    if (this.sendBuf.length < size) this.sendBuf = Buffer.allocUnsafe(Math.max(size, this.sendBuf.length * 2))
    let off = 0
    for (const m of msgs) off = writeMessage(this.sendBuf, off, m.type, m.flags, m.seq, m.header, m.attrs)
    for (;;) {
      const n = this.c.send(this.fd, this.sendBuf, off, 0)
      if (n >= 0) return
      const errno = errnoName(this.c.errno())
      if (errno !== 'EINTR') throw new NetlinkError(errno)
    }
  }

  private sendBatch(batch: Pending[]): void {
    const pending = new Map<number, Pending>()
    for (const p of batch) {
      p.seq = this.nextSeq()
      pending.set(p.seq, p)
    }
    // Only the last message asks for an ack: the kernel handles a datagram's messages in order,
    // so that ack proves every earlier one done, and failures still come back as NLMSG_ERROR.
    const last = batch[batch.length - 1] as Pending
    const wire = batch.map((p) => (p === last ? p : { ...p, flags: p.flags & ~NLM_F_ACK }))
    try {
      this.sendRaw(wire)
      while (pending.size > 0) {
        for (const msg of this.receive()) {
          const p = pending.get(msg.seq)
          if (!p) continue
          if (msg.type === NLMSG_ERROR) {
            pending.delete(msg.seq)
            const err = parseError(msg.payload)
            if (err === 0) p.resolve(p.replies)
            else p.reject(errorOf(msg))
            if (p === last) {
              // Everything before the last message was handled; whatever did not fail succeeded.
              for (const q of pending.values()) q.resolve(q.replies)
              pending.clear()
            }
          } else {
            p.replies.push({ ...msg, payload: Buffer.from(msg.payload) })
          }
        }
      }
    } catch (err) {
      for (const p of pending.values()) p.reject(err as Error)
    }
  }

  /** One datagram's messages, waiting (bounded) when nothing is queued yet. */
  private receive(): NlMessage[] {
    for (;;) {
      const n = this.c.recv(this.fd, this.recvBuf, RECV_SIZE, MSG_DONTWAIT)
      if (n > 0) return parseMessages(this.recvBuf.subarray(0, n))
      const errno = n === 0 ? 'EAGAIN' : errnoName(this.c.errno())
      if (errno === 'EINTR') continue
      if (errno !== 'EAGAIN') throw new NetlinkError(errno)
      const pfd = Buffer.alloc(8)
      pfd.writeInt32LE(this.fd, 0)
      pfd.writeInt16LE(POLLIN, 4)
      if (this.c.poll(pfd, 1, WAIT_MS) === 0) throw new NetlinkError('ETIMEDOUT')
    }
  }
}

function errorOf(msg: NlMessage): NetlinkError {
  const err = parseError(msg.payload) ?? -5
  let extack: string | undefined
  if (msg.flags & NLM_F_ACK_TLVS && msg.payload.length >= 4 + NLMSG_HDRLEN) {
    // With NETLINK_CAP_ACK the echoed request is only its header; TLVs follow it.
    const text = parseAttrs(msg.payload, 4 + NLMSG_HDRLEN).get(NLMSGERR_ATTR_MSG)
    if (text) extack = text.toString('utf8').replace(/\0.*$/s, '')
  }
  return new NetlinkError(errnoName(err), extack)
}
