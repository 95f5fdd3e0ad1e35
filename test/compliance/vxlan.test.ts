import assert from 'node:assert/strict'
import { vxlan } from '../../src/backend/vxlan/vxlan.ts'
import { formatCidr, formatIp } from '../../src/ip/ip.ts'
import { config, lease } from '../unit/backend/backend-fixtures.ts'
import { backendSuite } from './backend-suite.ts'

const mac = (n: number): string => `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`

backendSuite('vxlan', {
  type: 'vxlan',
  config: config({ type: 'vxlan' }),
  create: (deps) => vxlan({ vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 0 }, deps),
  peer: (n) => lease({ type: 'vxlan', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n}`, data: { VNI: 1, VtepMAC: mac(n) } }),
  async assertProgrammed(kernel, peer) {
    const dev = await kernel.getLink('flannel.1')
    assert.ok(dev)
    const n = Number(formatCidr(peer.subnet!).split('.')[2])
    const snap = kernel.snapshot()
    const gw = formatIp({ family: 4, value: peer.subnet!.addr })
    assert.deepEqual(snap.neighs.filter((x) => x.index === dev.index && formatIp(x.ip) === gw).map((x) => x.mac), [mac(n)])
    assert.deepEqual(snap.fdb.filter((x) => x.mac === mac(n)).map((x) => formatIp(x.dst!)), [formatIp(peer.attrs.publicIP!)])
    const routes = await kernel.listRoutes({ family: 4, dst: peer.subnet! })
    assert.deepEqual(routes.map((r) => `${formatIp(r.gateway!)} ${r.index} ${r.onlink === true}`), [`${gw} ${dev.index} true`])
  },
})
