import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr, parseIp, type IpAddr, type IpNet } from '../../../src/ip/ip.ts'
import type { Route } from '../../../src/kernel/kernel.ts'
import { encodeMessage, parseMessages } from '../../../src/kernel/linux/netlink-codec.ts'
import {
  addrRequest, decodeAddr, decodeFdb, decodeLink, decodeNeigh, decodeRoute, fdbRequest, ifinfomsg, neighRequest, routeRequest, RTM, vxlanRequest,
} from '../../../src/kernel/linux/rtnetlink-codec.ts'

const ip = (t: string): IpAddr => parseIp(t) as IpAddr
const net = (t: string): IpNet => parseCidr(t) as IpNet
const payload = (type: number, header: Buffer, attrs: Parameters<typeof encodeMessage>[4]): Buffer =>
  (parseMessages(encodeMessage(type, 0, 1, header, attrs))[0] as { payload: Buffer }).payload

test('route requests decode back to the same route (IPv4 and IPv6)', () => {
  const routes: Route[] = [
    { dst: net('10.5.2.0/24'), gateway: ip('10.5.2.0'), index: 3, onlink: true, table: 254, type: 'unicast', scope: 'universe' },
    { dst: net('fd00:5:2::/64'), gateway: ip('fd00:5:2::'), index: 4, onlink: true, table: 254, type: 'unicast', scope: 'universe', metric: 1024 },
    { dst: net('10.9.0.0/16'), table: 254, type: 'blackhole', scope: 'universe' },
    { dst: net('0.0.0.0/0'), gateway: ip('10.7.0.9'), index: 2, table: 1000, type: 'unicast', scope: 'universe', src: ip('10.7.0.1') },
  ]
  for (const r of routes) {
    const { header, attrs } = routeRequest(r, false)
    assert.deepEqual(decodeRoute(payload(RTM.NEWROUTE, header, attrs)), r)
  }
})

test('a unicast route without gateway gets link scope, as iproute2 does; delete uses wildcards', () => {
  const { header } = routeRequest({ dst: net('10.5.0.0/16'), index: 3 }, false)
  assert.equal(header.readUInt8(6), 253)
  const del = routeRequest({ dst: net('10.5.0.0/16') }, true).header
  assert.equal(del.readUInt8(6), 255)
  assert.equal(del.readUInt8(7), 0)
})

test('addr, neigh and fdb requests decode back', () => {
  const a = addrRequest({ index: 3, ip: ip('10.5.1.0'), prefix: 32 })
  assert.deepEqual(decodeAddr(payload(RTM.NEWADDR, a.header, a.attrs)), { index: 3, ip: ip('10.5.1.0'), prefix: 32, scope: 'universe' })
  const n = neighRequest({ index: 3, ip: ip('fd00:5:2::'), mac: '0E:A0:00:00:00:02' }, false)
  assert.deepEqual(decodeNeigh(payload(RTM.NEWNEIGH, n.header, n.attrs)), { index: 3, ip: ip('fd00:5:2::'), mac: '0e:a0:00:00:00:02', state: 'permanent' })
  const f = fdbRequest({ index: 3, mac: '0e:a0:00:00:00:02', dst: ip('192.0.2.20') }, false)
  assert.deepEqual(decodeFdb(payload(RTM.NEWNEIGH, f.header, f.attrs)), { index: 3, mac: '0e:a0:00:00:00:02', dst: ip('192.0.2.20'), self: true, state: 'permanent' })
  assert.equal(decodeNeigh(payload(RTM.NEWNEIGH, f.header, f.attrs)), undefined, 'an FDB entry is not a neighbour')
})

test('vxlan link requests decode back, unknown attributes are ignored', () => {
  const attrs = vxlanRequest({ name: 'flannel.1', vni: 7, port: 4789, local: ip('192.0.2.10'), parentIndex: 2, learning: false, gbp: true, mtu: 1450, mac: '0e:a0:00:00:00:01' })
  attrs.push({ type: 999, value: Buffer.from('future') })
  const link = decodeLink(payload(RTM.NEWLINK, ifinfomsg(5, 1, 1), attrs))
  assert.deepEqual(link, {
    index: 5, name: 'flannel.1', kind: 'vxlan', mtu: 1450, mac: '0e:a0:00:00:00:01', up: true,
    vxlan: { vni: 7, port: 4789, local: ip('192.0.2.10'), parentIndex: 2, learning: false, gbp: true },
  })
})
