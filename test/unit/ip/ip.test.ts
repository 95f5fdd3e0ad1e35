import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr, formatIp, ipFromBytes, ipToBytes, isUnicast, netContainsNet, netOverlaps, parseCidr, parseIp } from '../../../src/ip/ip.ts'

test('parses and formats IPv4 and IPv6 in canonical form', () => {
  for (const [input, want] of [
    ['10.5.1.2', '10.5.1.2'], ['::', '::'], ['::1', '::1'], ['fd00:12:13::', 'fd00:12:13::'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], ['fc00:0:0:1::', 'fc00:0:0:1::'], ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
  ] as const) {
    const ip = parseIp(input)
    assert.ok(ip, input)
    assert.equal(formatIp(ip), want)
  }
})

test('rejects malformed addresses without throwing', () => {
  for (const bad of ['', '1.2.3', '1.2.3.256', '01.2.3.4', '::1.2.3', '1.2.3.4.5', '1::2::3', '12345::', 'g::1', ':::', '1:2:3:4:5:6:7:8:9', '.1.2.3']) {
    assert.equal(parseIp(bad), undefined, bad)
  }
})

test('CIDRs mask host bits as Go ParseCIDR does, and nets compare by containment', () => {
  assert.equal(formatCidr(parseCidr('10.5.1.2/16')!), '10.5.0.0/16')
  assert.equal(parseCidr('10.5.0.0/33'), undefined)
  assert.equal(parseCidr('10.5.0.0'), undefined)
  const net = parseCidr('10.5.0.0/16')!
  assert.ok(netContainsNet(net, parseCidr('10.5.3.0/24')!))
  assert.ok(!netContainsNet(net, parseCidr('10.6.3.0/24')!))
  assert.ok(netOverlaps(parseCidr('10.5.3.0/24')!, net))
  assert.ok(!netOverlaps(parseCidr('fd00::/64')!, net), 'families never overlap')
})

test('byte conversion round-trips and unicast excludes special addresses', () => {
  const ip = parseIp('2001:db8::7')!
  assert.deepEqual(ipFromBytes(ipToBytes(ip)), ip)
  assert.ok(isUnicast(parseIp('10.1.2.3')!))
  for (const special of ['0.0.0.0', '127.0.0.1', '224.0.0.1', '255.255.255.255', '::', '::1', 'ff02::1']) assert.ok(!isUnicast(parseIp(special)!), special)
})
