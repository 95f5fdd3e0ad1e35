import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatSubnetKey, parseSubnetKey } from '../../../src/lease/subnet-key.ts'
import { formatCidr, parseCidr, type IpNet } from '../../../src/ip/ip.ts'

const net = (s: string): IpNet => parseCidr(s) as IpNet

test('round-trips an IPv4 key', () => {
  const parts = parseSubnetKey('10.12.13.0-24')
  assert.ok(parts)
  assert.equal(formatCidr(parts.subnet), '10.12.13.0/24')
  assert.equal(parts.ipv6Subnet, undefined)
  assert.equal(formatSubnetKey(parts.subnet), '10.12.13.0-24')
})

test('round-trips a dual-stack key', () => {
  const parts = parseSubnetKey('10.12.13.0-24&fd00:12:13::-56')
  assert.ok(parts?.ipv6Subnet)
  assert.equal(formatCidr(parts.subnet), '10.12.13.0/24')
  assert.equal(formatCidr(parts.ipv6Subnet), 'fd00:12:13::/56')
  assert.equal(formatSubnetKey(parts.subnet, parts.ipv6Subnet), '10.12.13.0-24&fd00:12:13::-56')
})

test('parses the last segment of a full etcd path', () => {
  assert.equal(formatCidr(parseSubnetKey('/coreos.com/network/subnets/10.5.52.0-24')!.subnet), '10.5.52.0/24')
})

test('formats keys from nets', () => {
  assert.equal(formatSubnetKey(net('10.5.3.0/24'), net('fd00::/64')), '10.5.3.0-24&fd00::-64')
})

for (const bad of ['10', '10.12.13.0', '10.12.13-24', '10.12.13.300-24', '10.12.13.0-24hi', '&2001::-56',
  '10.12.13.0-24&:12:13:-56', '10.12.13.0-24&20011::-56', '10.12.13.0-33', '10.12.13.0-24&fd00::-129',
  '10.12.13.5-24', '', 'config', '10.12.13.0-24&fd00::1-64', '010.12.13.0-24', '10.12.13.0-24&10.1.1.0-24']) {
  test(`rejects ${JSON.stringify(bad)}`, () => {
    assert.equal(parseSubnetKey(bad), undefined)
  })
}
