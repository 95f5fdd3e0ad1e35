/**
 * Netlink framing, pure: nlmsghdr and nlattr encoding, and a decoder that never throws on
 * truncated or malformed input (it stops at the first inconsistent length). Little-endian host
 * byte order is assumed, as on every platform weft targets.
 */

export const NLMSG_HDRLEN = 16
export const NLMSG_NOOP = 1
export const NLMSG_ERROR = 2
export const NLMSG_DONE = 3
export const NLMSG_OVERRUN = 4

export const NLM_F_REQUEST = 0x1
export const NLM_F_MULTI = 0x2
export const NLM_F_ACK = 0x4
export const NLM_F_DUMP_INTR = 0x10
export const NLM_F_DUMP = 0x300
export const NLM_F_REPLACE = 0x100
export const NLM_F_EXCL = 0x200
export const NLM_F_CREATE = 0x400
export const NLM_F_APPEND = 0x800

const NLA_TYPE_MASK = 0x3fff

export const align4 = (n: number): number => (n + 3) & ~3

/** One decoded netlink message; `payload` is a view into the receive buffer. */
export interface NlMessage {
  readonly type: number
  readonly flags: number
  readonly seq: number
  readonly pid: number
  readonly payload: Buffer
}

/** Splits a datagram into messages; stops (without throwing) at a truncated or bogus header. */
export function parseMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = []
  let off = 0
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off)
    if (len < NLMSG_HDRLEN || off + len > buf.length) break
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    })
    off += align4(len)
  }
  return out
}

/** Attributes by type (last one wins); nested and byte-order flags are masked off the type. */
export function parseAttrs(buf: Buffer, start = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>()
  let off = start
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off)
    if (len < 4 || off + len > buf.length) break
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len))
    off += align4(len)
  }
  return out
}

/** The errno carried by an NLMSG_ERROR payload (0 = ack), or undefined when truncated. */
export function parseError(payload: Buffer): number | undefined {
  return payload.length >= 4 ? payload.readInt32LE(0) : undefined
}

export type AttrValue = Buffer | Uint8Array | Attr[]

/** An attribute to encode: a raw value, or nested attributes. */
export interface Attr {
  readonly type: number
  readonly value: AttrValue
}

export const u8 = (type: number, v: number): Attr => ({ type, value: Uint8Array.of(v & 0xff) })
export const u32 = (type: number, v: number): Attr => {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32LE(v >>> 0)
  return { type, value: b }
}
export const be16 = (type: number, v: number): Attr => {
  const b = Buffer.allocUnsafe(2)
  b.writeUInt16BE(v & 0xffff)
  return { type, value: b }
}
export const str = (type: number, s: string): Attr => ({ type, value: Buffer.from(s + '\0') })
export const bytes = (type: number, v: Uint8Array): Attr => ({ type, value: v })
export const flag = (type: number): Attr => ({ type, value: new Uint8Array(0) })
export const nested = (type: number, attrs: Attr[]): Attr => ({ type, value: attrs })

function attrsSize(attrs: readonly Attr[]): number {
  let n = 0
  for (const a of attrs) n += align4(4 + (Array.isArray(a.value) ? attrsSize(a.value) : (a.value as Uint8Array).length))
  return n
}

function writeAttrs(buf: Buffer, off: number, attrs: readonly Attr[]): number {
  for (const a of attrs) {
    const start = off
    off += 4
    if (Array.isArray(a.value)) off = writeAttrs(buf, off, a.value)
    else {
      buf.set(a.value as Uint8Array, off)
      off += (a.value as Uint8Array).length
    }
    buf.writeUInt16LE(off - start, start)
    buf.writeUInt16LE(a.type, start + 2)
    off = align4(off)
  }
  return off
}

/** Size of the encoded message, so a batch can be laid out in one buffer. */
export function messageSize(header: Uint8Array, attrs: readonly Attr[]): number {
  return NLMSG_HDRLEN + align4(header.length) + attrsSize(attrs)
}

/** Encodes one message at `off` in `buf` (which must be large enough); returns the new offset. */
export function writeMessage(
  buf: Buffer, off: number, type: number, flags: number, seq: number, header: Uint8Array, attrs: readonly Attr[],
): number {
  const len = messageSize(header, attrs)
  buf.writeUInt32LE(len, off)
  buf.writeUInt16LE(type, off + 4)
  buf.writeUInt16LE(flags, off + 6)
  buf.writeUInt32LE(seq >>> 0, off + 8)
  buf.writeUInt32LE(0, off + 12)
  buf.set(header, off + NLMSG_HDRLEN)
  buf.fill(0, off + NLMSG_HDRLEN + header.length, off + NLMSG_HDRLEN + align4(header.length))
  writeAttrs(buf, off + NLMSG_HDRLEN + align4(header.length), attrs)
  return off + len
}

export function encodeMessage(type: number, flags: number, seq: number, header: Uint8Array, attrs: readonly Attr[]): Buffer {
  const buf = Buffer.alloc(messageSize(header, attrs))
  writeMessage(buf, 0, type, flags, seq, header, attrs)
  return buf
}
