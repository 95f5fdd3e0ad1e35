import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkLease, leaseKey, SubnetIndex, type LeaseCheckContext } from '../../../src/backend/lease-validation.ts'
import { lease, net } from './backend-fixtures.ts'

const own = lease({ subnet: '10.5.1.0/24', publicIP: '192.168.1.2', ipv6Subnet: 'fd10:0:0:1::/64', publicIPv6: 'fd00::2' })
const ctx: LeaseCheckContext = { backendType: 'host-gw', families: [4, 6], networks: { 4: net('10.5.0.0/16'), 6: net('fd10::/48') }, own }
const v4ctx: LeaseCheckContext = { ...ctx, families: [4] }

function verdict(l: ReturnType<typeof lease>, c = v4ctx, index = new SubnetIndex()): string {
  const v = checkLease(c, l, index)
  return v.ok ? 'ok' : `${v.ignored ? 'ignored' : 'invalid'}: ${v.reason}`
}

test('a well-formed lease is accepted', () => {
  assert.equal(verdict(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' })), 'ok')
})

test('another backend type is ignored, not refused', () => {
  assert.match(verdict(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', type: 'vxlan' })), /^ignored: lease has backend type "vxlan", not "host-gw"/)
})

test('wrong leases are refused with the reason', () => {
  const cases: [ReturnType<typeof lease>, RegExp][] = [
    [lease({ subnet: '10.6.2.0/24', publicIP: '192.168.1.3' }), /IPv4 subnet 10\.6\.2\.0\/24 is outside the network 10\.5\.0\.0\/16/],
    [lease({ subnet: '10.5.1.0/25', publicIP: '192.168.1.3' }), /overlaps this host's subnet 10\.5\.1\.0\/24/],
    [lease({ subnet: '10.5.0.0/23', publicIP: '192.168.1.3' }), /overlaps this host's subnet/],
    [lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.2' }), /public IP 192\.168\.1\.2 is this host's own public IP/],
    [lease({ subnet: '10.5.2.0/24', publicIP: '224.0.0.1' }), /not a unicast IPv4 address/],
    [lease({ subnet: '10.5.2.0/24', publicIP: '0.0.0.0' }), /not a unicast IPv4 address/],
    [lease({ subnet: '10.5.2.0/24', publicIP: '127.0.0.1' }), /not a unicast IPv4 address/],
    [lease({ subnet: '10.5.2.0/24' }), /has an IPv4 subnet but no IPv4 public IP/],
    [lease({ ipv6Subnet: 'fd10:0:0:2::/64', publicIPv6: 'fd00::3' }), /lease has no IPv4 subnet/],
  ]
  for (const [l, re] of cases) assert.match(verdict(l), re)
})

test('overlap with another accepted lease is refused, but not with its own earlier version', () => {
  const index = new SubnetIndex()
  const a = lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' })
  index.add(net('10.5.2.0/24'), leaseKey(a, [4])!)
  assert.equal(verdict(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.9' }), v4ctx, index), 'ok', 'same key: an update')
  assert.match(verdict(lease({ subnet: '10.5.2.0/25', publicIP: '192.168.1.9' }), v4ctx, index), /overlaps the lease of 10\.5\.2\.0\/24/)
  assert.match(verdict(lease({ subnet: '10.5.0.0/22', publicIP: '192.168.1.9' }), { ...v4ctx, own: lease({ subnet: '10.5.100.0/24' }) }, index), /overlaps the lease of 10\.5\.2\.0\/24/)
  index.delete(net('10.5.2.0/24'), leaseKey(a, [4])!)
  assert.equal(verdict(lease({ subnet: '10.5.2.0/25', publicIP: '192.168.1.9' }), v4ctx, index), 'ok')
})

test('dual stack checks the IPv6 half too, and accepts a peer without one', () => {
  assert.equal(verdict(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3' }), ctx), 'ok')
  assert.equal(verdict(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', ipv6Subnet: 'fd10:0:0:2::/64', publicIPv6: 'fd00::3' }), ctx), 'ok')
  assert.match(verdict(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', ipv6Subnet: 'fd11:0:0:2::/64', publicIPv6: 'fd00::3' }), ctx), /IPv6 subnet fd11:0:0:2::\/64 is outside the network fd10::\/48/)
  assert.match(verdict(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', ipv6Subnet: 'fd10:0:0:2::/64', publicIPv6: 'fd00::2' }), ctx), /fd00::2 is this host's own public IP/)
  assert.match(verdict(lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', ipv6Subnet: 'fd10:0:0:2::/64', publicIPv6: 'ff02::1' }), ctx), /not a unicast IPv6 address/)
})

test('SubnetIndex finds overlaps across prefix lengths among thousands of entries quickly', () => {
  const index = new SubnetIndex()
  for (let i = 0; i < 5000; i++) index.add({ family: 4, addr: (10n << 24n) | (BigInt(i) << 8n), prefix: 24 }, `p${i}`)
  const t0 = performance.now()
  for (let i = 0; i < 5000; i++) assert.equal(index.findOverlap({ family: 4, addr: (10n << 24n) | (BigInt(i) << 8n), prefix: 24 }, `p${i}`), undefined)
  assert.ok(performance.now() - t0 < 500)
  assert.equal(index.findOverlap(net('10.0.3.128/25'), 'x'), 'p3')
  assert.equal(index.findOverlap(net('10.0.0.0/16'), 'x') !== undefined, true)
  assert.equal(index.findOverlap(net('11.0.0.0/16'), 'x'), undefined)
})
