import { test } from 'node:test'
import assert from 'node:assert/strict'
import { allocateSubnet, isSubnetCompatible } from '../../../src/lease/subnet-allocator.ts'
import type { FamilyConfig } from '../../../src/config/network-config.ts'
import { formatCidr, parseCidr, parseIp, type IpAddr, type IpNet } from '../../../src/ip/ip.ts'
import { isWeftError } from '../../../src/errors.ts'

const net = (s: string): IpNet => parseCidr(s) as IpNet
const ip = (s: string): IpAddr => parseIp(s) as IpAddr
const v4: FamilyConfig = { network: net('10.3.0.0/16'), subnetLen: 24, subnetMin: ip('10.3.1.0'), subnetMax: ip('10.3.25.0') }

test('picks the first free candidate with random 0 and skips taken ones', () => {
  const taken = ['10.3.1.0/24', '10.3.2.0/24', '10.3.4.0/24', '10.3.5.0/24', '10.3.31.0/24'].map(net)
  assert.equal(formatCidr(allocateSubnet(v4, taken, () => 0)), '10.3.3.0/24')
  assert.equal(formatCidr(allocateSubnet(v4, taken, () => 0.25)), '10.3.10.0/24') // 21 free: 3, 6..25 → index 5
  assert.equal(formatCidr(allocateSubnet(v4, taken, () => 0.9999999)), '10.3.25.0/24')
})

test('skips candidates overlapping a subnet of another size', () => {
  const taken = [net('10.3.0.0/20')] // covers 10.3.0.0 - 10.3.15.255
  assert.equal(formatCidr(allocateSubnet(v4, taken, () => 0)), '10.3.16.0/24')
})

test('random picks are uniform over at most 100 candidates', () => {
  const big: FamilyConfig = { network: net('10.0.0.0/8'), subnetLen: 24, subnetMin: ip('10.0.1.0'), subnetMax: ip('10.255.255.0') }
  assert.equal(formatCidr(allocateSubnet(big, [], () => 0.9999)), '10.0.100.0/24')
})

test('IPv6 candidates step by the subnet length', () => {
  const v6: FamilyConfig = { network: net('fc00::/48'), subnetLen: 64, subnetMin: ip('fc00:0:0:1::'), subnetMax: ip('fc00:0:0:ffff::') }
  assert.equal(formatCidr(allocateSubnet(v6, [net('fc00:0:0:1::/64'), net('10.3.1.0/24')], () => 0)), 'fc00:0:0:2::/64')
})

test('out of subnets names the range', () => {
  const small: FamilyConfig = { network: net('10.5.0.0/16'), subnetLen: 24, subnetMin: ip('10.5.1.0'), subnetMax: ip('10.5.2.0') }
  assert.throws(() => allocateSubnet(small, [net('10.5.1.0/24'), net('10.5.2.0/24')]), (err: unknown) => {
    assert.ok(isWeftError(err, 'LEASE_NO_FREE_SUBNET'))
    assert.equal(err.message, 'out of subnets: no free /24 in 10.5.1.0-10.5.2.0')
    return true
  })
})

test('compatibility: in range and of the configured length', () => {
  assert.ok(isSubnetCompatible(v4, net('10.3.6.0/24')))
  assert.ok(!isSubnetCompatible(v4, net('10.3.31.0/24')))
  assert.ok(!isSubnetCompatible(v4, net('10.3.6.0/25')))
  assert.ok(!isSubnetCompatible(v4, net('10.4.1.0/24')))
  assert.ok(!isSubnetCompatible(v4, net('fd00::/24')))
})
