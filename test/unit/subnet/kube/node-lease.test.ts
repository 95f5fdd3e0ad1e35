import { test } from 'node:test'
import assert from 'node:assert/strict'
import { annotationNames } from '../../../../src/subnet/kube/annotations.ts'
import { annotationChanges, checkOwnCidrs, nodePodCidrs, nodeToLease, storedPublicIps } from '../../../../src/subnet/kube/node-lease.ts'
import { formatCidr, formatIp, parseCidr, parseIp, type IpAddr, type IpNet } from '../../../../src/ip/ip.ts'
import type { KubeNode } from '../../../../src/subnet/kube/kube-types.ts'

const names = annotationNames('flannel.alpha.coreos.com')
const P = 'flannel.alpha.coreos.com/'
const ip = (t: string): IpAddr => parseIp(t) as IpAddr
const net = (t: string): IpNet => parseCidr(t) as IpNet
const node = (annotations: Record<string, string>, spec: KubeNode['spec'] = { podCIDR: '10.244.1.0/24' }): KubeNode => ({ metadata: { name: 'n1', annotations }, spec })

test('vxlan annotations are exactly flanneld\'s: keys, JSON text, marker', () => {
  const changes = annotationChanges(node({}), { publicIP: ip('10.200.0.1'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0a:58:0a:f4:01:00' } }, names)
  assert.deepEqual(changes, {
    [`${P}backend-type`]: 'vxlan',
    [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:00"}',
    [`${P}public-ip`]: '10.200.0.1',
    [`${P}kube-subnet-manager`]: 'true',
  })
})

test('host-gw writes backend-data null, as flanneld does; dual stack adds the v6 pair', () => {
  const v4 = annotationChanges(node({}), { publicIP: ip('10.200.0.1'), backendType: 'host-gw' }, names)
  assert.equal(v4[`${P}backend-data`], 'null')
  assert.equal(v4[`${P}backend-v6-data`], undefined)
  const dual = annotationChanges(node({}), { publicIP: ip('10.200.0.1'), publicIPv6: ip('fd00::1'), backendType: 'host-gw' }, names)
  assert.equal(dual[`${P}backend-v6-data`], 'null')
  assert.equal(dual[`${P}public-ipv6`], 'fd00::1')
})

test('only differing annotations are patched; public-ip-overwrite wins over our address', () => {
  const attrs = { publicIP: ip('10.200.0.1'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0a:00:00:00:00:01' } }
  const current = {
    [`${P}backend-type`]: 'vxlan', [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}', [`${P}public-ip`]: '10.200.0.1', [`${P}kube-subnet-manager`]: 'true',
  }
  assert.deepEqual(annotationChanges(node(current), attrs, names), {})
  const overwritten = annotationChanges(node({ ...current, [`${P}public-ip-overwrite`]: '172.18.0.2' }), attrs, names)
  assert.deepEqual(overwritten, { [`${P}public-ip`]: '172.18.0.2' })
})

test('a peer node becomes a lease; bad data is a reason, not a crash', () => {
  const good = nodeToLease(node({ [`${P}public-ip`]: '10.200.0.2', [`${P}backend-type`]: 'vxlan', [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:00:02"}' }), names, [4])
  assert.ok(good.ok)
  assert.equal(formatCidr(good.lease.subnet as IpNet), '10.244.1.0/24')
  assert.equal(formatIp(good.lease.attrs.publicIP as IpAddr), '10.200.0.2')
  assert.deepEqual(good.lease.attrs.backendData, { VNI: 1, VtepMAC: '0a:00:00:00:00:02' })
  const cases: Array<[Record<string, string>, KubeNode['spec'], RegExp]> = [
    [{ [`${P}public-ip`]: 'not-an-ip' }, { podCIDR: '10.244.1.0/24' }, /public-ip: "not-an-ip" is not an IPv4 address/],
    [{ [`${P}public-ip`]: '10.200.0.2', [`${P}backend-data`]: '{oops' }, { podCIDR: '10.244.1.0/24' }, /backend-data: not valid JSON/],
    [{ [`${P}public-ip`]: '10.200.0.2' }, { podCIDR: '10.244.1.0' }, /is not a CIDR/],
    [{ [`${P}public-ip`]: '10.200.0.2' }, { podCIDRs: ['10.244.1.0/24', 'fd00::/64', '10.9.0.0/24'] }, /at most one IPv4 and one IPv6/],
    [{ [`${P}public-ip`]: '10.200.0.2' }, { podCIDRs: ['fd00::/64'] }, /no IPv4 CIDR/],
  ]
  for (const [ann, spec, reason] of cases) {
    const r = nodeToLease(node(ann, spec), names, [4])
    assert.ok(!r.ok)
    assert.match(r.reason, reason)
  }
})

test('dual-stack podCIDRs split by family; own CIDRs must lie in the networks', () => {
  const cidrs = nodePodCidrs(node({}, { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] }))
  assert.ok(cidrs.ok)
  assert.equal(formatCidr(cidrs.v6 as IpNet), 'fd00:10:244:1::/64')
  assert.equal(checkOwnCidrs('n1', cidrs, { v4: net('10.244.0.0/16'), v6: net('fd00:10:244::/56') }), undefined)
  assert.match(checkOwnCidrs('n1', cidrs, { v4: net('10.5.0.0/16') }) ?? '', /doesn't contain "10.244.1.0\/24" PodCIDR of the "n1" node/)
})

test('node-public-ip annotations are read; a bad one is reported', () => {
  const stored = storedPublicIps(node({ [`${P}node-public-ip`]: '192.0.2.7', [`${P}node-public-ipv6`]: 'nope' }), names)
  assert.equal(formatIp(stored.v4 as IpAddr), '192.0.2.7')
  assert.equal(stored.v6, undefined)
  assert.match(stored.bad[0] ?? '', /node-public-ipv6/)
})
