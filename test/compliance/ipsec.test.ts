import assert from 'node:assert/strict'
import { ipsec } from '../../src/backend/ipsec/ipsec.ts'
import { parseIpsecOptions } from '../../src/backend/ipsec/ipsec-options.ts'
import { formatCidr, formatIp } from '../../src/ip/ip.ts'
import { MemoryIke } from '../../src/kernel/ike.ts'
import { config, lease } from '../unit/backend/backend-fixtures.ts'
import { backendSuite } from './backend-suite.ts'

let ike = new MemoryIke()
const PSK = 'k'.repeat(96)

backendSuite('ipsec', {
  type: 'ipsec',
  config: config({ type: 'ipsec' }),
  create: (deps) => {
    ike = new MemoryIke()
    return ipsec(parseIpsecOptions({ psk: PSK }), deps, async () => ike)
  },
  peer: (n) => lease({ type: 'ipsec', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n}` }),
  async assertProgrammed(_kernel, peer) {
    const conn = [...ike.loaded.values()].find((c) => formatCidr(c.remoteTs) === formatCidr(peer.subnet!))
    assert.deepEqual(conn && [conn.name, formatIp(conn.remoteAddr), formatCidr(conn.localTs), conn.psk, conn.espProposal, conn.udpEncap],
      [`192.168.1.2-10.5.1.0/24-${formatCidr(peer.subnet!)}-${formatIp(peer.attrs.publicIP!)}`, formatIp(peer.attrs.publicIP!), '10.5.1.0/24', PSK, 'aes128gcm16-sha256-prfsha256-ecp256', false])
  },
  state: async () => ike.connections(),
  writes: async () => ike.calls,
})
