import assert from 'node:assert/strict'
import { ipip } from '../../src/backend/ipip/ipip.ts'
import { formatCidr, formatIp } from '../../src/ip/ip.ts'
import { config, lease } from '../unit/backend/backend-fixtures.ts'
import { backendSuite } from './backend-suite.ts'

backendSuite('ipip', {
  type: 'ipip',
  config: config({ type: 'ipip' }),
  create: (deps) => ipip({ directRouting: false }, deps),
  peer: (n) => lease({ type: 'ipip', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n}` }),
  async assertProgrammed(kernel, peer) {
    const dev = await kernel.getLink('flannel.ipip')
    const routes = await kernel.listRoutes({ family: 4, dst: peer.subnet! })
    assert.deepEqual(routes.map((r) => `${formatCidr(r.dst)} via ${formatIp(r.gateway!)} dev ${r.index} onlink=${r.onlink}`),
      [`${formatCidr(peer.subnet!)} via ${formatIp(peer.attrs.publicIP!)} dev ${dev?.index} onlink=true`])
  },
})
