import { after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { wireguard } from '../../src/backend/wireguard/wireguard.ts'
import { parseWireGuardOptions } from '../../src/backend/wireguard/wireguard-options.ts'
import { formatCidr, formatIp } from '../../src/ip/ip.ts'
import { generatePrivateKey, publicKeyOf } from '../../src/kernel/wireguard-keys.ts'
import { config, lease } from '../unit/backend/backend-fixtures.ts'
import { backendSuite } from './backend-suite.ts'

const dir = mkdtempSync(join(tmpdir(), 'weft-wg-compliance-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const keyOf = (n: number): string => publicKeyOf(generatePrivateKey(() => Buffer.alloc(32, n)))

backendSuite('wireguard', {
  type: 'wireguard',
  config: config({ type: 'wireguard' }),
  create: (deps) => wireguard(parseWireGuardOptions({}), deps, join(dir, 'wgkey')),
  peer: (n) => lease({ type: 'wireguard', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n}`, data: { PublicKey: keyOf(n), Port: 51820 } }),
  async assertProgrammed(kernel, peer) {
    const wg = await kernel.getWireGuard('flannel-wg')
    const data = peer.attrs.backendData as { PublicKey: string }
    const found = wg?.peers.find((p) => p.publicKey === data.PublicKey)
    assert.deepEqual(found && { ips: found.allowedIPs.map(formatCidr), endpoint: `${formatIp(found.endpoint!.ip)}:${found.endpoint!.port}` },
      { ips: [formatCidr(peer.subnet!)], endpoint: `${formatIp(peer.attrs.publicIP!)}:51820` })
  },
})
