/**
 * The extension backend against the compliance suite: its "data plane" is a pair of real
 * commands (exec'd shell scripts) that record each programmed peer as a file, so the suite's
 * state and write counts are the commands' effects.
 */
import { after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { extension } from '../../src/backend/extension/extension.ts'
import { parseExtensionOptions } from '../../src/backend/extension/extension-options.ts'
import { formatCidr, formatIp } from '../../src/ip/ip.ts'
import { config, lease } from '../unit/backend/backend-fixtures.ts'
import { backendSuite } from './backend-suite.ts'

const dir = mkdtempSync(join(tmpdir(), 'weft-ext-compliance-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const peers = join(dir, 'peers')
const calls = join(dir, 'calls')
// add: one file per subnet holding PUBLIC_IP and the BackendData read from stdin; remove deletes it.
writeFileSync(join(dir, 'add.sh'), 'f="$1/$(echo "$SUBNET" | tr / _)"; { echo "$PUBLIC_IP"; cat; } > "$f"; echo add >> "$2"\n')
writeFileSync(join(dir, 'remove.sh'), 'rm "$1/$(echo "$SUBNET" | tr / _)"; echo remove >> "$2"\n')

const options = parseExtensionOptions({
  subnetaddcommand: `/bin/sh ${join(dir, 'add.sh')} ${peers} ${calls}`,
  subnetremovecommand: `/bin/sh ${join(dir, 'remove.sh')} ${peers} ${calls}`,
})

const fileOf = (subnet: string): string => join(peers, subnet.replace('/', '_'))

backendSuite('extension', {
  type: 'extension',
  config: config({ type: 'extension' }),
  create: (deps) => {
    rmSync(peers, { recursive: true, force: true })
    mkdirSync(peers)
    writeFileSync(calls, '')
    return extension(options, deps)
  },
  peer: (n) => lease({ type: 'extension', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n}`, data: `peer-${n}-data` }),
  async assertProgrammed(_kernel, peer) {
    const content = readFileSync(fileOf(formatCidr(peer.subnet!)), 'utf8')
    assert.equal(content, `${formatIp(peer.attrs.publicIP!)}\n${String(peer.attrs.backendData)}\n`)
  },
  state: async () => readdirSync(peers).sort().map((f) => `${f}=${readFileSync(join(peers, f), 'utf8')}`),
  writes: async () => readFileSync(calls, 'utf8').split('\n').filter(Boolean).length,
})
