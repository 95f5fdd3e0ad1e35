import assert from 'node:assert/strict'
import { hostGw } from '../../src/backend/host-gw/host-gw.ts'
import { formatCidr, formatIp } from '../../src/ip/ip.ts'
import { config, lease } from '../unit/backend/backend-fixtures.ts'
import { backendSuite } from './backend-suite.ts'

backendSuite('host-gw', {
  type: 'host-gw',
  config: config({ type: 'host-gw' }),
  create: (deps) => hostGw({}, deps),
  peer: (n) => lease({ type: 'host-gw', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n}` }),
  async assertProgrammed(kernel, peer) {
    const routes = await kernel.listRoutes({ family: 4, dst: peer.subnet! })
    assert.deepEqual(routes.map((r) => `${formatCidr(r.dst)} via ${formatIp(r.gateway!)}`), [`${formatCidr(peer.subnet!)} via ${formatIp(peer.attrs.publicIP!)}`])
  },
})
