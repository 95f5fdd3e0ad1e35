import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatLeases, formatPingMatrix, formatTable } from '../../../demo/demo-report.ts'
import { parsePingRtt } from '../../helpers/netns.ts'
import { parseLeases } from '../../helpers/testbed.ts'
import { parseSubnetEnv } from '../../helpers/pods.ts'

test('formatTable pads columns and trims line ends', () => {
  assert.equal(formatTable(['A', 'BB'], [['xxx', 'y'], ['z', '']]), 'A    BB\nxxx  y\nz')
})

test('lease table sorted by host, IPv6 column only when present', () => {
  const rows = [
    { subnet: '10.5.9.0/24', publicIp: '10.200.0.2', backend: 'vxlan', host: 'h2' },
    { subnet: '10.5.3.0/24', publicIp: '10.200.0.1', backend: 'vxlan', host: 'h1' },
  ]
  assert.equal(formatLeases(rows), 'HOST  SUBNET       PUBLIC IP   BACKEND\nh1    10.5.3.0/24  10.200.0.1  vxlan\nh2    10.5.9.0/24  10.200.0.2  vxlan')
  const v6 = formatLeases([{ ...rows[0]!, ipv6Subnet: 'fd00:10:5:1::/64' }, { subnet: '10.5.1.0/24', publicIp: '10.9.9.9', backend: 'udp' }])
  assert.match(v6.split('\n')[0]!, /IPV6 SUBNET/)
  assert.match(v6.split('\n')[2]!, /^\?\s+10\.5\.1\.0\/24\s+-\s+10\.9\.9\.9\s+udp$/)
})

test('ping matrix: diagonal, ok with rtt, FAIL, missing', () => {
  const m = formatPingMatrix(['h1', 'h2', 'h3'], [
    { from: 'h1', to: 'h2', ok: true, rttMs: 0.123, attempts: 1 },
    { from: 'h2', to: 'h1', ok: false, attempts: 9 },
    { from: 'h1', to: 'h3', ok: true, attempts: 2 },
  ])
  assert.deepEqual(m.split('\n').map((l) => l.split(/\s{2,}/)), [
    ['FROM \\ TO', 'h1', 'h2', 'h3'],
    ['h1', '-', 'ok 0.12ms', 'ok'],
    ['h2', 'FAIL', '-', '?'],
    ['h3', '?', '?', '-'],
  ])
})

test('ping rtt parsing', () => {
  assert.equal(parsePingRtt('64 bytes from 10.5.1.2: icmp_seq=1 ttl=63 time=0.213 ms'), 0.213)
  assert.equal(parsePingRtt('time<1ms'), 1)
  assert.equal(parsePingRtt('100% packet loss'), undefined)
})

test('etcd leases: v4, dual-stack keys, JSON values, lease ids', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64')
  const json = JSON.stringify({ kvs: [
    { key: b64('/coreos.com/network/subnets/10.5.72.0-24'), value: b64('{"PublicIP":"10.200.0.1","BackendType":"vxlan"}'), lease: 7587879443212584000 },
    { key: b64('/coreos.com/network/subnets/10.5.3.0-24&fd00:10:5:1::-64'), value: b64('not json') },
  ] })
  // etcdctl prints lease ids as plain JSON numbers; precision beyond 2^53 is lost in JSON.parse, which is fine for display.
  const leases = parseLeases(json)
  assert.equal(leases.length, 2)
  assert.deepEqual(leases[0]!.attrs, { PublicIP: '10.200.0.1', BackendType: 'vxlan' })
  assert.equal(leases[0]!.subnet, '10.5.72.0/24')
  assert.deepEqual(leases[1], { subnet: '10.5.3.0/24', ipv6Subnet: 'fd00:10:5:1::/64', attrs: {}, etcdLease: '0' })
  assert.deepEqual(parseLeases('{"header":{}}'), [])
})

test('subnet.env parsing', () => {
  assert.deepEqual(parseSubnetEnv('# c\nFLANNEL_NETWORK=10.5.0.0/16\n\nFLANNEL_SUBNET="10.5.72.1/24"\nbad\nFLANNEL_MTU=1450\n'), {
    FLANNEL_NETWORK: '10.5.0.0/16', FLANNEL_SUBNET: '10.5.72.1/24', FLANNEL_MTU: '1450',
  })
})
