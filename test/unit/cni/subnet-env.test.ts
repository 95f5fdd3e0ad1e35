import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseSubnetEnv } from '../../../src/cni/subnet-env.ts'
import { formatCidr, formatIp } from '../../../src/ip/ip.ts'
import { isWeftError } from '../../../src/errors.ts'

test('parses flannel subnet.env, keeping the gateway address and the masked subnet', () => {
  const env = parseSubnetEnv('FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n')
  assert.equal(formatCidr(env.network!), '10.5.0.0/16')
  assert.equal(formatIp(env.subnet!.ip), '10.5.72.1')
  assert.equal(formatCidr(env.subnet!.net), '10.5.72.0/24')
  assert.equal(env.mtu, 1450)
  assert.equal(env.ipMasq, false)
  assert.equal(env.ipv6Network, undefined)
})

test('IPv6-only files, quotes and comments', () => {
  const env = parseSubnetEnv('# written by weft\nexport FLANNEL_IPV6_NETWORK="fd00:10::/56"\nFLANNEL_IPV6_SUBNET=fd00:10:0:48::1/64\n')
  assert.equal(formatCidr(env.ipv6Subnet!.net), 'fd00:10:0:48::/64')
  assert.equal(env.subnet, undefined)
})

test('malformed values name the key', () => {
  assert.throws(() => parseSubnetEnv('FLANNEL_SUBNET=10.5.300.1/24'), (e) => isWeftError(e, 'INVALID_INPUT') && /FLANNEL_SUBNET/.test(e.message))
  assert.throws(() => parseSubnetEnv('FLANNEL_MTU=abc'), /FLANNEL_MTU is not an MTU/)
  assert.throws(() => parseSubnetEnv('FLANNEL_IPMASQ=yes'), /FLANNEL_IPMASQ/)
})
