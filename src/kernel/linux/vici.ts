/**
 * strongSwan's VICI protocol (the versatile IKE control interface charon serves on a unix
 * socket, what swanctl and flannel's goStrongswanVici speak): packets are a 32-bit big-endian
 * length, a type byte, a command name for requests, then a message of sections, key/values and
 * lists. Only command requests are used (no event registration).
 */
import { connect } from 'node:net'

export type ViciValue = string | readonly string[] | ViciMessage
export interface ViciMessage { readonly [key: string]: ViciValue }

const SECTION_START = 1
const SECTION_END = 2
const KEY_VALUE = 3
const LIST_START = 4
const LIST_ITEM = 5
const LIST_END = 6
const CMD_REQUEST = 0
const CMD_RESPONSE = 1
const CMD_UNKNOWN = 2
const EVENT = 7

const name8 = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8')
  if (b.length > 255) throw new RangeError(`VICI name too long: ${s.slice(0, 40)}`)
  return Buffer.concat([Buffer.of(b.length), b])
}
const value16 = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8')
  if (b.length > 65535) throw new RangeError('VICI value too long')
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

export function encodeMessage(msg: ViciMessage): Buffer {
  const parts: Buffer[] = []
  for (const [key, value] of Object.entries(msg)) {
    if (typeof value === 'string') parts.push(Buffer.of(KEY_VALUE), name8(key), value16(value))
    else if (Array.isArray(value)) {
      parts.push(Buffer.of(LIST_START), name8(key))
      for (const item of value as readonly string[]) parts.push(Buffer.of(LIST_ITEM), value16(item))
      parts.push(Buffer.of(LIST_END))
    } else parts.push(Buffer.of(SECTION_START), name8(key), encodeMessage(value as ViciMessage), Buffer.of(SECTION_END))
  }
  return Buffer.concat(parts)
}

/** Decodes a message; throws RangeError on malformed input. */
export function decodeMessage(buf: Buffer): ViciMessage {
  let pos = 0
  const need = (n: number): void => { if (pos + n > buf.length) throw new RangeError('truncated VICI message') }
  const readName = (): string => { need(1); const n = buf[pos++] as number; need(n); const s = buf.toString('utf8', pos, pos + n); pos += n; return s }
  const readValue = (): string => { need(2); const n = buf.readUInt16BE(pos); pos += 2; need(n); const s = buf.toString('utf8', pos, pos + n); pos += n; return s }
  const section = (nested: boolean): Record<string, ViciValue> => {
    const out: Record<string, ViciValue> = {}
    while (pos < buf.length) {
      const type = buf[pos++]
      if (type === SECTION_END) { if (!nested) throw new RangeError('unbalanced VICI section end'); return out }
      const key = readName()
      if (type === KEY_VALUE) out[key] = readValue()
      else if (type === SECTION_START) out[key] = section(true)
      else if (type === LIST_START) {
        const items: string[] = []
        for (;;) {
          need(1)
          const t = buf[pos++]
          if (t === LIST_END) break
          if (t !== LIST_ITEM) throw new RangeError(`bad VICI list element ${t}`)
          items.push(readValue())
        }
        out[key] = items
      } else throw new RangeError(`bad VICI element type ${type}`)
    }
    if (nested) throw new RangeError('unterminated VICI section')
    return out
  }
  return section(false)
}

export function encodeRequest(command: string, msg: ViciMessage): Buffer {
  const body = Buffer.concat([Buffer.of(CMD_REQUEST), name8(command), encodeMessage(msg)])
  const len = Buffer.alloc(4)
  len.writeUInt32BE(body.length)
  return Buffer.concat([len, body])
}

/** Sends one command to the socket at `path` and resolves with its response message. */
export function viciRequest(path: string, command: string, msg: ViciMessage, timeoutMs = 10_000): Promise<ViciMessage> {
  return new Promise((resolve, reject) => {
    const sock = connect(path)
    let buf = Buffer.alloc(0)
    const done = (err: Error | undefined, value?: ViciMessage): void => {
      clearTimeout(timer)
      sock.destroy()
      if (err) reject(err)
      else resolve(value as ViciMessage)
    }
    const timer = setTimeout(() => done(new Error(`VICI ${command}: no answer from ${path} within ${timeoutMs} ms`)), timeoutMs)
    sock.on('connect', () => sock.write(encodeRequest(command, msg)))
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const packet = buf.subarray(4, 4 + buf.readUInt32BE(0))
        buf = buf.subarray(4 + packet.length)
        const type = packet[0]
        if (type === EVENT) continue
        if (type === CMD_UNKNOWN) return done(new Error(`VICI: charon does not know the command ${command}`))
        if (type !== CMD_RESPONSE) return done(new Error(`VICI ${command}: unexpected packet type ${type}`))
        try {
          return done(undefined, decodeMessage(packet.subarray(1)))
        } catch (err) {
          return done(err as Error)
        }
      }
    })
    sock.on('error', (err) => done(err))
    sock.on('close', () => done(new Error(`VICI ${command}: ${path} closed before answering`)))
  })
}
