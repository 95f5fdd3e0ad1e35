import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LeaseWatcher } from '../../../src/lease/lease-watcher.ts'
import type { Lease, LeaseEvent } from '../../../src/lease/lease.ts'
import { formatCidr, parseCidr, parseIp, type IpAddr, type IpNet } from '../../../src/ip/ip.ts'

const lease = (cidr: string, pub = '1.1.1.1', v6?: string): Lease => ({
  subnet: parseCidr(cidr) as IpNet,
  ...(v6 ? { ipv6Subnet: parseCidr(v6) as IpNet } : {}),
  attrs: { publicIP: parseIp(pub) as IpAddr, backendType: 'vxlan' },
})
const show = (events: LeaseEvent[]): string[] => events.map((e) => `${e.type} ${formatCidr(e.lease.subnet!)}`)

test('reset reports new leases and excludes our own', () => {
  const w = new LeaseWatcher(lease('10.5.1.0/24'))
  assert.deepEqual(show(w.reset([lease('10.5.1.0/24'), lease('10.5.2.0/24'), lease('10.5.3.0/24')])), ['added 10.5.2.0/24', 'added 10.5.3.0/24'])
  assert.equal(w.leases.length, 2)
})

test('reset diffs against the known set: known leases are not re-emitted, missing ones are removed', () => {
  const w = new LeaseWatcher()
  w.reset([lease('10.5.2.0/24'), lease('10.5.3.0/24')])
  const events = w.reset([lease('10.5.3.0/24', '9.9.9.9'), lease('10.5.4.0/24')])
  assert.deepEqual(show(events), ['added 10.5.4.0/24', 'removed 10.5.2.0/24'])
  // the stored copy is the snapshot's
  assert.equal(w.leases.find((l) => formatCidr(l.subnet!) === '10.5.3.0/24')!.attrs.publicIP!.value, parseIp('9.9.9.9')!.value)
})

test('update: added stores and reports, re-added replaces, removed substitutes the stored copy', () => {
  const w = new LeaseWatcher(lease('10.5.1.0/24'))
  w.reset([])
  assert.deepEqual(show(w.update([{ type: 'added', lease: lease('10.5.2.0/24', '2.2.2.2') }])), ['added 10.5.2.0/24'])
  assert.deepEqual(show(w.update([{ type: 'added', lease: lease('10.5.2.0/24', '3.3.3.3') }])), ['added 10.5.2.0/24'])
  assert.equal(w.leases.length, 1)
  const bare: Lease = { subnet: parseCidr('10.5.2.0/24') as IpNet, attrs: { backendType: '' } }
  const removed = w.update([{ type: 'removed', lease: bare }])
  assert.equal(removed.length, 1)
  assert.equal(removed[0]!.type, 'removed')
  assert.equal(removed[0]!.lease.attrs.publicIP!.value, parseIp('3.3.3.3')!.value)
  assert.equal(removed[0]!.lease.attrs.backendType, 'vxlan')
  assert.equal(w.leases.length, 0)
})

test('update drops events about our own subnet', () => {
  const w = new LeaseWatcher(lease('10.5.1.0/24'))
  assert.deepEqual(w.update([{ type: 'added', lease: lease('10.5.1.0/24') }, { type: 'removed', lease: lease('10.5.1.0/24') }]), [])
})

test('removal of an unknown lease is still reported with what the event carries', () => {
  const w = new LeaseWatcher()
  assert.deepEqual(show(w.update([{ type: 'removed', lease: lease('10.5.9.0/24') }])), ['removed 10.5.9.0/24'])
})

test('dual-stack leases are identified by their IPv4 subnet; IPv6-only by the IPv6 subnet', () => {
  const w = new LeaseWatcher()
  w.reset([lease('10.5.2.0/24', '1.1.1.1', 'fd00:0:0:2::/64')])
  assert.deepEqual(show(w.update([{ type: 'added', lease: lease('10.5.2.0/24', '1.1.1.1', 'fd00:0:0:2::/64') }])), ['added 10.5.2.0/24'])
  assert.equal(w.leases.length, 1)
  const v6only: Lease = { ipv6Subnet: parseCidr('fd00:0:0:7::/64') as IpNet, attrs: { backendType: '' } }
  assert.equal(w.update([{ type: 'added', lease: v6only }]).length, 1)
  assert.equal(w.leases.length, 2)
  assert.equal(w.update([{ type: 'removed', lease: v6only }])[0]!.lease, v6only)
  assert.equal(w.leases.length, 1)
})

test('a snapshot of 5,000 leases is reduced in linear time', () => {
  const w = new LeaseWatcher()
  const many: Lease[] = []
  for (let i = 0; i < 5000; i++) many.push({ subnet: { family: 4, addr: (10n << 24n) + BigInt(i) * 256n, prefix: 24 }, attrs: { backendType: '' } })
  const t0 = performance.now()
  assert.equal(w.reset(many).length, 5000)
  assert.equal(w.reset(many).length, 0)
  assert.ok(performance.now() - t0 < 500)
})
