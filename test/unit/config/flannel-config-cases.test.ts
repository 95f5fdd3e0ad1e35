/** flannel-reference.md §1: every CheckNetworkConfig rule and example, run through parseNetworkConfig. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseNetworkConfig } from '../../../src/config/parse-network-config.ts'
import { backendRegistry } from '../../../src/backend/registry.ts'
import { formatCidr, formatIp } from '../../../src/ip/ip.ts'
import { isWeftError } from '../../../src/errors.ts'
import type { FamilyConfig } from '../../../src/config/network-config.ts'

const parse = (obj: unknown) => parseNetworkConfig(typeof obj === 'string' ? obj : JSON.stringify(obj), backendRegistry)
const show = (f: FamilyConfig | undefined) => f && { network: formatCidr(f.network), len: f.subnetLen, min: formatIp(f.subnetMin), max: formatIp(f.subnetMax) }
const withVxlan = (o: Record<string, unknown>) => ({ ...o, Backend: { Type: 'vxlan' } })

function rejects(obj: unknown, field: string, text: string | RegExp): void {
  assert.throws(() => parse(obj), (err: unknown) => {
    assert.ok(isWeftError(err), `not a WeftError: ${String(err)}`)
    assert.equal((err as { field?: string }).field, field)
    if (typeof text === 'string') assert.ok(err.message.includes(text), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(text)}`)
    else assert.match(err.message, text)
    return true
  })
}

test('10.3.0.0/16 gives /24 subnets from 10.3.1.0 to 10.3.255.0', () => {
  assert.deepEqual(show(parse(withVxlan({ Network: '10.3.0.0/16' })).config.ipv4), { network: '10.3.0.0/16', len: 24, min: '10.3.1.0', max: '10.3.255.0' })
})

test('fc00::/48 gives /64 subnets from fc00:0:0:1:: to fc00:0:0:ffff::', () => {
  const { config } = parse(withVxlan({ EnableIPv6: true, Network: '10.3.0.0/16', IPv6Network: 'fc00::/48' }))
  assert.deepEqual(show(config.ipv6), { network: 'fc00::/48', len: 64, min: 'fc00:0:0:1::', max: 'fc00:0:0:ffff::' })
  assert.equal(config.enableIPv4, true)
  assert.equal(config.enableIPv6, true)
})

test('lower-case keys are accepted, as with Go encoding/json', () => {
  const { config } = parse('{"network":"10.3.0.0/16","subnetlen":25,"enableIPv6":true,"ipv6network":"fc00::/48","backend":{"type":"vxlan"}}')
  assert.deepEqual(show(config.ipv4), { network: '10.3.0.0/16', len: 25, min: '10.3.0.128', max: '10.3.255.128' })
  assert.equal(config.ipv6?.subnetLen, 64)
})

test('explicit SubnetLen, SubnetMin and SubnetMax are kept', () => {
  const { config } = parse(withVxlan({ Network: '10.0.0.0/8', SubnetLen: 20, SubnetMin: '10.10.0.0', SubnetMax: '10.99.0.0' }))
  assert.deepEqual(show(config.ipv4), { network: '10.0.0.0/8', len: 20, min: '10.10.0.0', max: '10.99.0.0' })
  const v6 = parse(withVxlan({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetLen: 56, IPv6SubnetMin: 'fc00:0:0:100::', IPv6SubnetMax: 'fc00:0:0:ff00::' })).config
  assert.deepEqual(show(v6.ipv6), { network: 'fc00::/48', len: 56, min: 'fc00:0:0:100::', max: 'fc00:0:0:ff00::' })
  assert.equal(v6.ipv4, undefined)
})

test('Network host bits are masked', () => {
  assert.equal(formatCidr(parse(withVxlan({ Network: '10.5.1.2/16' })).config.ipv4!.network), '10.5.0.0/16')
})

test('default SubnetLen: /24 up to a /22 network, prefix+2 above, /28 the smallest', () => {
  assert.equal(parse(withVxlan({ Network: '10.0.0.0/22' })).config.ipv4!.subnetLen, 24)
  assert.equal(parse(withVxlan({ Network: '10.0.0.0/23' })).config.ipv4!.subnetLen, 25)
  assert.deepEqual(show(parse(withVxlan({ Network: '10.0.0.0/28' })).config.ipv4), { network: '10.0.0.0/28', len: 30, min: '10.0.0.4', max: '10.0.0.12' })
  rejects(withVxlan({ Network: '10.0.0.0/29' }), 'Network', 'network is too small. Minimum useful network prefix is /28')
  rejects(withVxlan({ Network: '10.0.0.0/29' }), 'Network', '10.0.0.0/29')
})

test('IPv6 default SubnetLen: /64 up to /62, prefix+2 above, /124 the smallest', () => {
  const v6 = (net: string) => parse(withVxlan({ EnableIPv6: true, Network: '10.0.0.0/16', IPv6Network: net })).config.ipv6!
  assert.equal(v6('fc00::/62').subnetLen, 64)
  assert.equal(v6('fc00::/63').subnetLen, 65)
  assert.equal(v6('fc00::/124').subnetLen, 126)
  rejects(withVxlan({ EnableIPv6: true, Network: '10.0.0.0/16', IPv6Network: 'fc00::/125' }), 'IPv6Network', 'IPv6Network is too small. Minimum useful network prefix is /124')
})

test('SubnetLen limits', () => {
  rejects(withVxlan({ Network: '10.0.0.0/16', SubnetLen: 31 }), 'SubnetLen', 'SubnetLen must be less than /31')
  rejects(withVxlan({ Network: '10.0.0.0/16', SubnetLen: 17 }), 'SubnetLen', 'network must be able to accommodate at least four subnets')
  assert.equal(parse(withVxlan({ Network: '10.0.0.0/16', SubnetLen: 18 })).config.ipv4!.subnetLen, 18)
  assert.equal(parse(withVxlan({ Network: '10.0.0.0/16', SubnetLen: 30 })).config.ipv4!.subnetLen, 30)
  const v6 = { EnableIPv6: true, Network: '10.0.0.0/16', IPv6Network: 'fc00::/48' }
  rejects(withVxlan({ ...v6, IPv6SubnetLen: 127 }), 'IPv6SubnetLen', 'SubnetLen must be less than /127')
  rejects(withVxlan({ ...v6, IPv6SubnetLen: 49 }), 'IPv6SubnetLen', 'network must be able to accommodate at least four subnets')
})

test('SubnetMin/SubnetMax must lie in the network and on a SubnetLen boundary', () => {
  rejects(withVxlan({ Network: '10.3.0.0/16', SubnetMin: '10.4.0.0' }), 'SubnetMin', 'SubnetMin is not in the range of the Network: 10.4.0.0 is outside 10.3.0.0/16')
  rejects(withVxlan({ Network: '10.3.0.0/16', SubnetMax: '10.2.255.0' }), 'SubnetMax', 'SubnetMax is not in the range of the Network')
  rejects(withVxlan({ Network: '10.3.0.0/16', SubnetMin: '10.3.1.128' }), 'SubnetMin', 'SubnetMin is not on a SubnetLen boundary: 10.3.1.128')
  rejects(withVxlan({ Network: '10.3.0.0/16', SubnetMax: '10.3.9.1' }), 'SubnetMax', 'SubnetMax is not on a SubnetLen boundary: 10.3.9.1')
  const v6 = { EnableIPv6: true, Network: '10.0.0.0/16', IPv6Network: 'fc00::/48' }
  rejects(withVxlan({ ...v6, IPv6SubnetMin: 'fc01::' }), 'IPv6SubnetMin', 'IPv6SubnetMin is not in the range of the IPv6Network')
  rejects(withVxlan({ ...v6, IPv6SubnetMax: 'fc01::' }), 'IPv6SubnetMax', 'IPv6SubnetMax is not in the range of the IPv6Network')
  rejects(withVxlan({ ...v6, IPv6SubnetMin: 'fc00:0:0:1::1' }), 'IPv6SubnetMin', 'IPv6SubnetMin is not on a SubnetLen boundary: fc00:0:0:1::1')
  rejects(withVxlan({ ...v6, IPv6SubnetMax: 'fc00:0:0:1::1' }), 'IPv6SubnetMax', 'IPv6SubnetMax is not on a SubnetLen boundary')
})

test('SubnetMin above SubnetMax is refused (flannel would fail every allocation)', () => {
  rejects(withVxlan({ Network: '10.3.0.0/16', SubnetMin: '10.3.9.0', SubnetMax: '10.3.2.0' }), 'SubnetMin', 'is greater than SubnetMax 10.3.2.0')
})

test('a zero SubnetMin counts as unset, as in flannel', () => {
  assert.equal(formatIp(parse(withVxlan({ Network: '10.3.0.0/16', SubnetMin: '0.0.0.0' })).config.ipv4!.subnetMin), '10.3.1.0')
})

test('missing or empty networks', () => {
  rejects(withVxlan({}), 'Network', 'please define a correct Network parameter in the flannel config')
  rejects(withVxlan({ Network: '0.0.0.0/0' }), 'Network', 'please define a correct Network parameter')
  rejects(withVxlan({ Network: '10.0.0.0/16', EnableIPv6: true }), 'IPv6Network', 'please define a correct IPv6Network parameter in the flannel config')
  // With IPv4 off, Network is not needed.
  assert.equal(parse(withVxlan({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48' })).config.ipv4, undefined)
})

test('both stacks disabled is an error', () => {
  rejects(withVxlan({ EnableIPv4: false, Network: '10.0.0.0/16' }), 'EnableIPv4', 'none defined stack')
})

test('EnableNFTables defaults to false and is read', () => {
  assert.equal(parse(withVxlan({ Network: '10.0.0.0/16' })).config.enableNFTables, false)
  assert.equal(parse(withVxlan({ Network: '10.0.0.0/16', enableNFTables: true })).config.enableNFTables, true)
})
