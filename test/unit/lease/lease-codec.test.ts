import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeLeaseAttrs, encodeLeaseAttrs } from '../../../src/lease/lease-codec.ts'
import { formatIp, parseIp, type IpAddr } from '../../../src/ip/ip.ts'
import { isWeftError } from '../../../src/errors.ts'

const ip = (s: string): IpAddr => parseIp(s) as IpAddr

const EXAMPLES = [
  '{"PublicIP":"1.2.3.4","PublicIPv6":null}',
  '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
  '{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}}',
  '{"PublicIP":"0.0.0.0","PublicIPv6":"2001:db8::5","BackendType":"host-gw"}',
  '{"PublicIP":"1.2.3.4","PublicIPv6":null,"BackendType":"udp","BackendData":null}',
]

for (const json of EXAMPLES) {
  test(`round-trips byte for byte: ${json.slice(0, 60)}`, () => {
    assert.equal(encodeLeaseAttrs(decodeLeaseAttrs(json)), json)
  })
}

test('decodes fields', () => {
  const attrs = decodeLeaseAttrs(EXAMPLES[1] as string)
  assert.equal(formatIp(attrs.publicIP!), '192.168.64.3')
  assert.equal(attrs.publicIPv6, undefined)
  assert.equal(attrs.backendType, 'vxlan')
  assert.deepEqual(attrs.backendData, { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' })
})

test('zero IPv4 decodes to undefined and undefined encodes to 0.0.0.0', () => {
  const attrs = decodeLeaseAttrs('{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::2"}')
  assert.equal(attrs.publicIP, undefined)
  assert.equal(encodeLeaseAttrs({ publicIPv6: ip('fd00::2'), backendType: '' }), '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::2"}')
})

test('omits empty BackendType and absent backend data', () => {
  assert.equal(encodeLeaseAttrs({ publicIP: ip('1.2.3.4'), backendType: '' }), '{"PublicIP":"1.2.3.4","PublicIPv6":null}')
})

test('escapes HTML characters as Go does', () => {
  const json = encodeLeaseAttrs({ publicIP: ip('1.2.3.4'), backendType: 'x', backendData: { a: '<&>' } })
  assert.equal(json, '{"PublicIP":"1.2.3.4","PublicIPv6":null,"BackendType":"x","BackendData":{"a":"\\u003c\\u0026\\u003e"}}')
  assert.deepEqual(decodeLeaseAttrs(json).backendData, { a: '<&>' })
})

test('accepts case-insensitive field names like Go', () => {
  assert.equal(formatIp(decodeLeaseAttrs('{"publicip":"1.2.3.4"}').publicIP!), '1.2.3.4')
})

const GARBAGE: Array<[string, string]> = [
  ['not json', 'value'],
  ['[1,2]', 'value'],
  ['null', 'value'],
  ['"str"', 'value'],
  ['{"PublicIP":"1.2.3"}', 'PublicIP'],
  ['{"PublicIP":7}', 'PublicIP'],
  ['{"PublicIP":"fd00::1"}', 'PublicIP'],
  ['{"PublicIP":"1.2.3.4","PublicIPv6":"1.2.3.4"}', 'PublicIPv6'],
  ['{"PublicIP":"1.2.3.4","PublicIPv6":{}}', 'PublicIPv6'],
  ['{"PublicIP":"1.2.3.4","BackendType":5}', 'BackendType'],
  ['{"PublicIP":"1.2.3.4","PublicIPv6":"::1.2.3"}', 'PublicIPv6'],
]
for (const [json, field] of GARBAGE) {
  test(`rejects ${json} naming ${field}`, () => {
    assert.throws(() => decodeLeaseAttrs(json), (err: unknown) => {
      assert.ok(isWeftError(err, 'LEASE_INVALID'), String(err))
      assert.equal(err.details['field'], field)
      assert.match(err.message, new RegExp(`^lease ${field} `))
      return true
    })
  })
}
