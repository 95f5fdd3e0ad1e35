/** Decoding semantics of parseNetworkConfig: Go encoding/json behaviour, types, backend section, warnings. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseNetworkConfig } from '../../../src/config/parse-network-config.ts'
import { backendRegistry } from '../../../src/backend/registry.ts'
import { formatCidr } from '../../../src/ip/ip.ts'
import { isWeftError } from '../../../src/errors.ts'

const parse = (json: string) => parseNetworkConfig(json, backendRegistry)

function fails(json: string, code: string, text: string): void {
  assert.throws(() => parse(json), (err: unknown) => {
    assert.ok(isWeftError(err, code as never), `expected ${code}, got ${String(err)}`)
    assert.ok(err.message.includes(text), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(text)}`)
    return true
  })
}

test('a later key for the same field wins, whatever its case', () => {
  const { config } = parse('{"Network":"10.1.0.0/16","network":"10.2.0.0/16","Backend":{"Type":"vxlan"}}')
  assert.equal(formatCidr(config.ipv4!.network), '10.2.0.0/16')
  // JSON.parse would keep the first position of "network" and lose this ordering.
  const again = parse('{"network":"10.1.0.0/16","Network":"10.2.0.0/16","network":"10.3.0.0/16","Backend":{"Type":"vxlan"}}')
  assert.equal(formatCidr(again.config.ipv4!.network), '10.3.0.0/16')
})

test('null leaves bool and number fields at their defaults', () => {
  const { config } = parse('{"Network":"10.1.0.0/16","EnableIPv4":null,"SubnetLen":null,"Backend":{"Type":"vxlan"}}')
  assert.equal(config.enableIPv4, true)
  assert.equal(config.ipv4!.subnetLen, 24)
  fails('{"Network":null,"Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'Network: invalid IPv4 CIDR format')
})

test('wrong JSON types name the field', () => {
  fails('{"Network":"10.1.0.0/16","EnableIPv6":"true","Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'EnableIPv6: must be a boolean (true or false), got string "true"')
  fails('{"Network":"10.1.0.0/16","SubnetLen":"24","Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'SubnetLen: must be a non-negative integer, got string "24"')
  fails('{"Network":"10.1.0.0/16","SubnetLen":-1,"Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'SubnetLen: must be a non-negative integer, got number -1')
  fails('{"Network":"10.1.0.0/16","SubnetLen":2.4e1,"Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'got number 2.4e1')
  fails('{"Network":"10.1.0.0/16","SubnetLen":18446744073709551616,"Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'SubnetLen: is out of range')
  fails('{"Network":16,"Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'Network: invalid IPv4 CIDR format')
  fails('{"Network":"fc00::/48","Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'got string "fc00::/48"')
  fails('{"Network":"10.1.0.0/16","EnableIPv6":true,"IPv6Network":"10.2.0.0/16","Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'IPv6Network: invalid IPv6 CIDR format')
  fails('{"Network":"10.1.0.0","Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'Network: invalid IPv4 CIDR format')
  fails('{"Network":"10.1.0.0/16","SubnetMin":"fc00::","Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'SubnetMin: must be an IPv4 address string')
  fails('{"Network":"10.1.0.0/16","SubnetMax":10,"Backend":{"Type":"vxlan"}}', 'CONFIG_INVALID', 'SubnetMax: must be an IPv4 address string, got number 10')
})

test('IPv6SubnetMin null is "unset" (a pointer in flannel)', () => {
  const { config } = parse('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":null,"Backend":{"Type":"vxlan"}}')
  assert.equal(config.ipv6!.subnetMin.value, 0xfc00_0000_0000_0001n << 64n)
})

test('malformed JSON and non-objects', () => {
  fails('{"Network":"10.1.0.0/16",}', 'CONFIG_INVALID', 'invalid JSON at offset 25')
  fails('', 'CONFIG_INVALID', 'invalid JSON at offset 0: unexpected end of input')
  fails('[1]', 'CONFIG_INVALID', 'must be a JSON object, got array')
  fails('{"a":1} x', 'CONFIG_INVALID', 'unexpected data after the top-level value')
})

test('unknown top-level keys are warnings, not errors', () => {
  const { config, warnings } = parse('{"Network":"10.1.0.0/16","Networks":["10.2.0.0/16"],"BackendType":"x","Backend":{"Type":"vxlan"}}')
  assert.equal(config.backend.type, 'vxlan')
  assert.deepEqual(warnings, ['unknown key "Networks" in the network config is ignored', 'unknown key "BackendType" in the network config is ignored'])
})

test('absent Backend means udp, with a warning recommending an explicit Type', () => {
  const { config, warnings } = parse('{"Network":"10.1.0.0/16"}')
  assert.deepEqual(config.backend, { type: 'udp', options: { port: 8285 } })
  assert.equal(warnings.length, 1)
  assert.match(warnings[0]!, /no Backend section: using type "udp" as flannel does; set Backend\.Type explicitly/)
})

test('Backend type is lower-cased and its section goes to the backend parser, keys folded', () => {
  const { config, warnings } = parse('{"Network":"10.1.0.0/16","Backend":{"TYPE":"VxLan","VNI":7,"port":4789,"directrouting":true,"Vni":9}}')
  assert.deepEqual(warnings, [])
  assert.deepEqual(config.backend, { type: 'vxlan', options: { vni: 9, port: 4789, gbp: false, learning: false, directRouting: true, mtu: 0 } })
})

test('Backend errors', () => {
  fails('{"Network":"10.1.0.0/16","Backend":{"Type":"vxlam"}}', 'BACKEND_UNKNOWN', 'unknown backend type "vxlam"; expected one of alloc, host-gw, udp, vxlan')
  fails('{"Network":"10.1.0.0/16","Backend":{"Type":""}}', 'BACKEND_UNKNOWN', 'unknown backend type ""')
  fails('{"Network":"10.1.0.0/16","Backend":{"Port":8285}}', 'CONFIG_INVALID', 'Backend.Type: is required; expected one of alloc')
  fails('{"Network":"10.1.0.0/16","Backend":{"Type":7}}', 'CONFIG_INVALID', 'Backend.Type: must be a string, got number 7')
  fails('{"Network":"10.1.0.0/16","Backend":"vxlan"}', 'CONFIG_INVALID', 'Backend: must be an object with a Type, got string "vxlan"')
  fails('{"Network":"10.1.0.0/16","Backend":null}', 'CONFIG_INVALID', 'Backend: must be an object with a Type, got null')
  fails('{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan","VNII":2}}', 'CONFIG_INVALID', 'Backend: unknown key "vnii"; expected one of Type, VNI, Port, GBP, Learning, DirectRouting, MTU')
  fails('{"Network":"10.1.0.0/16","Backend":{"Type":"toString"}}', 'BACKEND_UNKNOWN', 'unknown backend type "toString"')
})

test('the result is frozen', () => {
  const { config } = parse('{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}')
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.ipv4) && Object.isFrozen(config.backend))
})

test('kube mode: SubnetLen/Min/Max problems are warnings, Network is still required', () => {
  const kube = (json: string) => parseNetworkConfig(json, backendRegistry, { mode: 'kube' })
  const { config, warnings } = kube('{"Network":"10.244.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}')
  assert.equal(config.ipv4!.subnetLen, 24)
  assert.equal(warnings.length, 1)
  assert.match(warnings[0]!, /^SubnetLen must be less than \/31, got 31 \(ignored: the Kubernetes subnet manager/)
  const small = kube('{"Network":"10.244.0.0/30","Backend":{"Type":"vxlan"}}')
  assert.deepEqual([formatCidr(small.config.ipv4!.network), small.config.ipv4!.subnetLen], ['10.244.0.0/30', 30])
  assert.match(small.warnings[0]!, /network is too small/)
  assert.throws(() => kube('{"Backend":{"Type":"vxlan"}}'), /please define a correct Network parameter/)
  // The default stays etcd mode.
  assert.throws(() => parse('{"Network":"10.244.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}'), /SubnetLen must be less than \/31/)
})
