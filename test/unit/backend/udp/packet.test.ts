import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildNetUnreachable, checkIpv4, decrementTtl, DropReason, inetChecksum, ipv4Dst, ipv4Src, mayAnswerWithIcmp, packetSource } from '../../../../src/backend/udp/packet.ts'

/** A valid IPv4 packet with the header checksum computed from scratch. */
function packet(opts: { ttl?: number; proto?: number; src?: number[]; dst?: number[]; payload?: number[]; ihl?: number; frag?: number; id?: number } = {}): Buffer {
  const ihl = opts.ihl ?? 5
  const payload = opts.payload ?? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  const buf = Buffer.alloc(ihl * 4 + payload.length)
  buf[0] = 0x40 | ihl
  buf.writeUInt16BE(buf.length, 2)
  buf.writeUInt16BE(opts.id ?? 0x1234, 4)
  buf.writeUInt16BE(opts.frag ?? 0x4000, 6)
  buf[8] = opts.ttl ?? 64
  buf[9] = opts.proto ?? 17
  Buffer.from(opts.src ?? [10, 5, 1, 2]).copy(buf, 12)
  Buffer.from(opts.dst ?? [10, 5, 2, 3]).copy(buf, 16)
  for (let i = 20; i < ihl * 4; i++) buf[i] = 1 // NOP options
  Buffer.from(payload).copy(buf, ihl * 4)
  buf.writeUInt16BE(inetChecksum(buf, 0, ihl * 4), 10)
  return buf
}

const headerValid = (buf: Uint8Array): boolean => inetChecksum(buf, 0, ((buf[0] as number) & 15) * 4) === 0

test('checkIpv4 accepts a sound packet and names each defect', () => {
  const p = packet()
  assert.equal(checkIpv4(p, p.length), 0)
  assert.equal(checkIpv4(p, 19), DropReason.short)
  assert.equal(checkIpv4(Buffer.concat([Buffer.from([0x60]), p.subarray(1)]), p.length), DropReason.notIpv4)
  const badIhl = Buffer.from(p); badIhl[0] = 0x44
  assert.equal(checkIpv4(badIhl, badIhl.length), DropReason.badIhl)
  const longIhl = packet({ payload: [] }); longIhl[0] = 0x46
  assert.equal(checkIpv4(longIhl, longIhl.length), DropReason.badIhl, 'IHL beyond the bytes read')
  const badLen = Buffer.from(p); badLen.writeUInt16BE(p.length + 1, 2)
  assert.equal(checkIpv4(badLen, badLen.length), DropReason.badLength)
  assert.equal(checkIpv4(p, p.length - 1), DropReason.badLength, 'truncated read')
})

test('addresses are read in host order as unsigned numbers', () => {
  const p = packet({ src: [192, 168, 1, 2], dst: [255, 1, 2, 3] })
  assert.equal(ipv4Src(p), 0xc0a80102)
  assert.equal(ipv4Dst(p), 0xff010203)
})

test('decrementTtl patches the checksum to what a full recomputation gives, for every TTL and many headers', () => {
  for (let ttl = 2; ttl <= 255; ttl++) {
    for (const id of [0, 1, 0x1234, 0xfeff, 0xffff]) {
      for (const proto of [1, 6, 17, 255]) {
        const p = packet({ ttl, id, proto })
        assert.ok(decrementTtl(p))
        assert.equal(p[8], ttl - 1)
        assert.ok(headerValid(p), `ttl ${ttl} id ${id} proto ${proto}`)
        const fresh = Buffer.from(p); fresh.writeUInt16BE(0, 10)
        const full = inetChecksum(fresh, 0, 20)
        const got = p.readUInt16BE(10)
        // One's complement has two zeros; both verify.
        assert.ok(got === full || (got ^ full) === 0xffff, `ttl ${ttl} id ${id}: ${got} vs ${full}`)
      }
    }
  }
})

test('decrementTtl refuses TTL 1 and 0 and leaves the packet untouched', () => {
  for (const ttl of [0, 1]) {
    const p = packet({ ttl })
    const copy = Buffer.from(p)
    assert.equal(decrementTtl(p), false)
    assert.deepEqual(p, copy)
  }
})

test('net unreachable: flannel layout, src = tun address, TTL 8, offending header + 8 bytes, valid checksums', () => {
  const offender = packet({ ttl: 63, proto: 6, src: [10, 5, 1, 7], dst: [10, 5, 99, 1], payload: [...Array(40).keys()] })
  const out = Buffer.alloc(128)
  const n = buildNetUnreachable(offender, offender.length, 0x0a050100, out)
  assert.equal(n, 20 + 8 + 20 + 8)
  assert.equal(out[0], 0x45)
  assert.equal(out.readUInt16BE(2), n)
  assert.equal(out.readUInt16BE(4), 0, 'id 0')
  assert.equal(out.readUInt16BE(6), 0, 'no flags')
  assert.equal(out[8], 8)
  assert.equal(out[9], 1)
  assert.deepEqual([...out.subarray(12, 16)], [10, 5, 1, 0])
  assert.deepEqual([...out.subarray(16, 20)], [10, 5, 1, 7])
  assert.ok(headerValid(out))
  assert.equal(out[20], 3)
  assert.equal(out[21], 0)
  assert.equal(out.readUInt32BE(24), 0, 'unused field zero')
  assert.deepEqual(out.subarray(28, n), offender.subarray(0, 28))
  assert.equal(inetChecksum(out, 20, n - 20), 0, 'ICMP checksum')
})

test('net unreachable quotes IP options and refuses an offender too short to quote', () => {
  const withOpts = packet({ ihl: 7, payload: [1, 2, 3, 4, 5, 6, 7, 8, 9] })
  const out = Buffer.alloc(128)
  const n = buildNetUnreachable(withOpts, withOpts.length, 1, out)
  assert.equal(n, 28 + 28 + 8)
  assert.deepEqual(out.subarray(28, n), withOpts.subarray(0, 36))
  assert.equal(inetChecksum(out, 20, n - 20), 0)
  const short = packet({ payload: [1, 2, 3] })
  assert.equal(buildNetUnreachable(short, short.length, 1, out), 0)
})

test('no ICMP error about ICMP errors or non-first fragments; yes about echo and TCP/UDP', () => {
  assert.ok(mayAnswerWithIcmp(packet({ proto: 6 }), 30))
  assert.ok(mayAnswerWithIcmp(packet({ proto: 17, frag: 0x2000 }), 30), 'first fragment (MF set, offset 0)')
  assert.equal(mayAnswerWithIcmp(packet({ proto: 17, frag: 0x2001 }), 30), false, 'non-first fragment')
  assert.equal(mayAnswerWithIcmp(packet({ proto: 17, frag: 0x1fff }), 30), false)
  const icmp = (type: number): Buffer => packet({ proto: 1, payload: [type, 0, 0, 0, 0, 0, 0, 0] })
  assert.ok(mayAnswerWithIcmp(icmp(8), 28), 'echo request')
  assert.ok(mayAnswerWithIcmp(icmp(0), 28), 'echo reply')
  for (const t of [3, 4, 5, 11, 12]) assert.equal(mayAnswerWithIcmp(icmp(t), 28), false, `error type ${t}`)
  assert.equal(mayAnswerWithIcmp(packet({ proto: 1, payload: [] }), 20), false, 'ICMP without a type byte')
})

test('fuzz: random bytes never throw, and accepted packets keep a valid checksum through decrementTtl', () => {
  let seed = 12345
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
  const out = Buffer.alloc(128)
  let accepted = 0
  for (let i = 0; i < 20000; i++) {
    const len = rnd() % 80
    const buf = Buffer.alloc(len)
    for (let j = 0; j < len; j++) buf[j] = rnd() & 0xff
    // Half the cases start from a valid packet with bytes flipped, so the accept path is reached.
    if (i % 2 === 0 && len >= 28) {
      const p = packet({ payload: [...buf.subarray(20, len)], ttl: (rnd() % 256) })
      p.copy(buf)
      if (rnd() % 3 === 0) { const at = rnd() % len; buf[at] = (buf[at] as number) ^ (1 << (rnd() % 8)) }
    }
    const verdict = checkIpv4(buf, len)
    assert.ok(verdict >= 0 && verdict <= 4)
    if (verdict !== 0) continue
    accepted++
    const valid = headerValid(buf)
    const ttl = buf[8] as number
    const ok = decrementTtl(buf)
    assert.equal(ok, ttl > 1)
    if (ok && valid) assert.ok(headerValid(buf), 'valid stays valid')
    if (mayAnswerWithIcmp(buf, len)) {
      const n = buildNetUnreachable(buf, len, 0x0a000001, out)
      if (n > 0) assert.equal(inetChecksum(out, 20, n - 20), 0)
    }
  }
  assert.ok(accepted > 1000, `accept path exercised (${accepted})`)
})

test('packetSource evaluates to the same functions (what the worker runs)', () => {
  const fns = new Function(`${packetSource()}; return { checkIpv4, decrementTtl, buildNetUnreachable }`)() as { checkIpv4: typeof checkIpv4; decrementTtl: typeof decrementTtl; buildNetUnreachable: typeof buildNetUnreachable }
  const a = packet({ ttl: 9 })
  const b = Buffer.from(a)
  assert.equal(fns.checkIpv4(a, a.length), 0)
  fns.decrementTtl(a); decrementTtl(b)
  assert.deepEqual(a, b)
})
