/**
 * The rtnetlink decoder must survive anything the socket hands it: random datagrams, every
 * truncation of real kernel messages (captured in fixtures/rtnetlink-dump.json), bit flips and
 * corrupted length fields. Seeded PRNG and bounded iterations keep it deterministic and fast.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { parseAttrs, parseError, parseMessages, type NlMessage } from '../../../src/kernel/linux/netlink-codec.ts'
import {
  decodeAddr, decodeEvent, decodeFdb, decodeLink, decodeNeigh, decodeRoute, RTM,
} from '../../../src/kernel/linux/rtnetlink-codec.ts'

const fixture = JSON.parse(readFileSync(new URL('./fixtures/rtnetlink-dump.json', import.meta.url), 'utf8')) as {
  messages: { type: number; payload: string }[]
}
const real = fixture.messages.map((m) => ({ type: m.type, payload: Buffer.from(m.payload, 'hex') }))

function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const decoders = [decodeLink, decodeAddr, (p: Buffer) => decodeRoute(p), (p: Buffer) => decodeRoute(p, true), decodeNeigh, decodeFdb]
const TYPES = Object.values(RTM)

/** Every decoder on one payload; all must return a value or undefined, never throw. */
function decodeAll(payload: Buffer): number {
  let decoded = 0
  for (const d of decoders) if (d(payload) !== undefined) decoded++
  for (const type of TYPES) decodeEvent({ type, flags: 0, seq: 0, pid: 0, payload } satisfies NlMessage)
  parseAttrs(payload)
  parseError(payload)
  return decoded
}

function frame(type: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(16 + payload.length)
  b.writeUInt32LE(b.length, 0)
  b.writeUInt16LE(type, 4)
  payload.copy(b, 16)
  return b
}

test('the fixture decodes to the objects that were configured', () => {
  const links = real.filter((m) => m.type === RTM.NEWLINK).map((m) => decodeLink(m.payload))
  const vx = links.find((l) => l?.name === 'flannel.1')
  assert.equal(vx?.kind, 'vxlan')
  assert.equal(vx?.mac, '0e:a0:00:00:00:01')
  assert.deepEqual({ ...vx?.vxlan, local: undefined }, { vni: 1, port: 8472, learning: false, gbp: true, local: undefined })
  const routes = real.filter((m) => m.type === RTM.NEWROUTE).map((m) => decodeRoute(m.payload)).filter((r) => r !== undefined)
  assert.ok(routes.some((r) => r.onlink && r.gateway !== undefined && r.dst.prefix === 24 && r.dst.family === 4))
  assert.ok(routes.some((r) => r.type === 'blackhole' && r.dst.prefix === 16))
  assert.ok(routes.some((r) => r.onlink && r.dst.family === 6 && r.dst.prefix === 64))
  const fdb = real.filter((m) => m.type === RTM.NEWNEIGH).map((m) => decodeFdb(m.payload)).filter((e) => e?.dst !== undefined)
  assert.equal(fdb.length, 2)
  assert.ok(fdb.every((e) => e?.self === true && e.state === 'permanent'))
})

test('parseMessages splits a multi-message datagram and stops at a truncated tail', () => {
  const a = frame(RTM.NEWROUTE, (real.find((m) => m.type === RTM.NEWROUTE) as { payload: Buffer }).payload)
  const both = Buffer.concat([a, a])
  assert.equal(parseMessages(both).length, 2)
  for (let cut = 0; cut < both.length; cut++) {
    const n = parseMessages(both.subarray(0, cut)).length
    assert.equal(n, cut >= both.length ? 2 : cut >= a.length ? 1 : 0)
  }
})

test('fuzz: every truncation of every real message decodes without throwing', () => {
  let checked = 0
  for (const m of real) {
    for (let cut = 0; cut <= m.payload.length; cut++) {
      decodeAll(m.payload.subarray(0, cut))
      checked++
    }
  }
  assert.ok(checked > 1000)
})

test('fuzz: mutated real messages (bit flips, bytes, length fields) never throw', () => {
  const rand = prng(0x5eed)
  const iterations = 20_000
  let decodedSome = 0
  for (let i = 0; i < iterations; i++) {
    const src = real[Math.floor(rand() * real.length)] as { type: number; payload: Buffer }
    const p = Buffer.from(src.payload)
    const edits = 1 + Math.floor(rand() * 4)
    for (let e = 0; e < edits && p.length > 0; e++) {
      const at = Math.floor(rand() * p.length)
      const kind = rand()
      if (kind < 0.4) p[at] = (p[at] as number) ^ (1 << Math.floor(rand() * 8))
      else if (kind < 0.7) p[at] = Math.floor(rand() * 256)
      else if (at + 1 < p.length) p.writeUInt16LE(Math.floor(rand() * 0x10000), at) // a corrupted nla_len/type
    }
    if (decodeAll(p) > 0) decodedSome++
    const dgram = frame(src.type, p)
    if (rand() < 0.3) dgram.writeUInt32LE(Math.floor(rand() * (dgram.length * 2)), 0)
    for (const msg of parseMessages(dgram)) decodeAll(msg.payload)
  }
  // Mutations keep most messages decodable: the decoder is lenient, not merely rejecting.
  assert.ok(decodedSome > iterations / 4, `only ${decodedSome} decodable`)
})

test('fuzz: random datagrams never throw', () => {
  const rand = prng(42)
  for (let i = 0; i < 5_000; i++) {
    const len = Math.floor(rand() * 256)
    const b = Buffer.alloc(len)
    for (let j = 0; j < len; j++) b[j] = Math.floor(rand() * 256)
    if (len >= 4 && rand() < 0.5) b.writeUInt32LE(Math.min(len, 16 + Math.floor(rand() * 64)), 0)
    for (const msg of parseMessages(b)) decodeAll(msg.payload)
    decodeAll(b)
  }
})
