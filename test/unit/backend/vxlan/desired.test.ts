import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isDirectlyReachable, vxlanPeerEntries } from '../../../../src/backend/vxlan/desired.ts'
import { decodeBackendData, encodeBackendData, macFromRandom, parseMac } from '../../../../src/backend/vxlan/backend-data.ts'
import { deviceName, incompatibility, vxlanOverhead, type VxlanDeviceConfig } from '../../../../src/backend/vxlan/vxlan-device.ts'
import { hostGwEntries } from '../../../../src/backend/host-gw/desired.ts'
import { describeEntry } from '../../../../src/kernel/apply.ts'
import type { Link } from '../../../../src/kernel/kernel.ts'
import { ip, lease, net } from '../backend-fixtures.ts'

test('vxlan peer: neighbour, FDB, onlink route in that order (IPv4 and IPv6)', () => {
  const v4 = vxlanPeerEntries({ subnet: net('10.5.34.0/24'), publicIp: ip('192.168.1.3'), vtepMac: '0e:00:00:00:00:03' }, 7, false)
  assert.deepEqual(v4.map(describeEntry), [
    'neigh 10.5.34.0 lladdr 0e:00:00:00:00:03 dev 7',
    'fdb 0e:00:00:00:00:03 dst 192.168.1.3 dev 7',
    'route 10.5.34.0/24 via 10.5.34.0 dev 7 onlink',
  ])
  const v6 = vxlanPeerEntries({ subnet: net('fd10:0:0:3::/64'), publicIp: ip('fd00::3'), vtepMac: '0e:00:00:00:00:03' }, 8, false)
  assert.deepEqual(v6.map(describeEntry), [
    'neigh fd10:0:0:3:: lladdr 0e:00:00:00:00:03 dev 8',
    'fdb 0e:00:00:00:00:03 dst fd00::3 dev 8',
    'route fd10:0:0:3::/64 via fd10:0:0:3:: dev 8 onlink',
  ])
  assert.equal(v4[0]?.kind === 'neigh' && v4[0].neigh.state, 'permanent')
})

test('vxlan peer with DirectRouting: one plain route via the public IP, no device', () => {
  const entries = vxlanPeerEntries({ subnet: net('10.5.34.0/24'), publicIp: ip('192.168.1.3'), vtepMac: '0e:00:00:00:00:03' }, 7, true)
  assert.deepEqual(entries.map(describeEntry), ['route 10.5.34.0/24 via 192.168.1.3'])
  assert.equal(isDirectlyReachable({}), true)
  assert.equal(isDirectlyReachable({ gateway: ip('192.168.1.1') }), false)
  assert.equal(isDirectlyReachable(undefined), false)
})

test('host-gw peer: one route per family via the public IP on the external interface', () => {
  const l = lease({ subnet: '10.5.2.0/24', publicIP: '192.168.1.3', ipv6Subnet: 'fd10:0:0:2::/64', publicIPv6: 'fd00::3' })
  assert.deepEqual(hostGwEntries(l, [4, 6], 2).map(describeEntry), ['route 10.5.2.0/24 via 192.168.1.3 dev 2', 'route fd10:0:0:2::/64 via fd00::3 dev 2'])
  assert.deepEqual(hostGwEntries(l, [4], 2).map(describeEntry), ['route 10.5.2.0/24 via 192.168.1.3 dev 2'])
})

test('BackendData round-trips flannel\'s JSON and refuses bad values', () => {
  assert.deepEqual(encodeBackendData({ vni: 1, vtepMac: 'c6:d2:32:6f:8f:44' }), { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' })
  assert.equal(JSON.stringify(encodeBackendData({ vni: 1, vtepMac: 'c6:d2:32:6f:8f:44' })), '{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}')
  assert.deepEqual(decodeBackendData({ VNI: 1, VtepMAC: 'C6:D2:32:6F:8F:44' }, 1), { ok: true, data: { vni: 1, vtepMac: 'c6:d2:32:6f:8f:44' } })
  assert.deepEqual(decodeBackendData('{"vni":1,"vtepmac":"c6-d2-32-6f-8f-44"}', 1), { ok: true, data: { vni: 1, vtepMac: 'c6:d2:32:6f:8f:44' } })
  const bad: [unknown, RegExp][] = [
    [undefined, /missing or not an object/],
    ['{', /not valid JSON/],
    [{ VNI: 2, VtepMAC: 'c6:d2:32:6f:8f:44' }, /VNI 2 does not match this network's VNI 1/],
    [{ VNI: '1', VtepMAC: 'c6:d2:32:6f:8f:44' }, /VNI must be an integer/],
    [{ VNI: 1, VtepMAC: 'c6:d2:32:6f:8f' }, /VtepMAC must be a unicast MAC/],
    [{ VNI: 1, VtepMAC: '01:00:5e:00:00:01' }, /VtepMAC must be a unicast MAC/],
    [{ VNI: 1, VtepMAC: '00:00:00:00:00:00' }, /VtepMAC must be a unicast MAC/],
    [{ VNI: 1 }, /VtepMAC must be a unicast MAC/],
  ]
  for (const [raw, re] of bad) {
    const r = decodeBackendData(raw, 1)
    assert.ok(!r.ok && re.test(r.reason), `${JSON.stringify(raw)} → ${JSON.stringify(r)}`)
  }
  assert.equal(parseMac('0e:00:00:00:00:0g'), undefined)
})

test('random MACs are locally administered unicast', () => {
  assert.equal(macFromRandom(Uint8Array.from([0xff, 1, 2, 3, 4, 5])), 'fe:01:02:03:04:05')
  assert.equal(macFromRandom(Uint8Array.from([0x00, 0, 0, 0, 0, 0])), '02:00:00:00:00:00')
})

test('device names, overhead, and the compatibility rules', () => {
  assert.equal(deviceName(4, 1), 'flannel.1')
  assert.equal(deviceName(6, 4096), 'flannel-v6.4096')
  assert.equal(vxlanOverhead(4), 50)
  assert.equal(vxlanOverhead(6), 70)
  const cfg: VxlanDeviceConfig = { family: 4, name: 'flannel.1', vni: 1, port: 0, gbp: false, learning: false, local: ip('192.168.1.2'), parentIndex: 2, mtu: 1450 }
  const link: Link = { index: 5, name: 'flannel.1', kind: 'vxlan', mtu: 1450, mac: '0e:00:00:00:00:01', up: true, vxlan: { vni: 1, port: 8472, learning: false, gbp: false, local: ip('192.168.1.2'), parentIndex: 2 } }
  assert.equal(incompatibility(link, cfg), undefined, 'port 0 accepts the kernel default')
  assert.equal(incompatibility({ ...link, mtu: 1400 }, cfg), undefined, 'MTU is adjusted, not a reason to recreate')
  assert.match(incompatibility(link, { ...cfg, port: 4789 }) ?? '', /port is 8472, not 4789/)
  assert.match(incompatibility(link, { ...cfg, vni: 2 }) ?? '', /VNI/)
  assert.match(incompatibility(link, { ...cfg, gbp: true }) ?? '', /gbp/)
  assert.match(incompatibility(link, { ...cfg, learning: true }) ?? '', /learning/)
  assert.match(incompatibility(link, { ...cfg, local: ip('192.168.1.9') }) ?? '', /local is 192\.168\.1\.2/)
  assert.match(incompatibility(link, { ...cfg, parentIndex: 3 }) ?? '', /dev index/)
  assert.match(incompatibility({ ...link, kind: 'tun' }, cfg) ?? '', /kind is tun/)
})
