/** ipsec: options as flannel's with field errors, VICI encoding, MTU, the IKE daemon's lifetime (charon itself: test/e2e/ipsec.test.ts). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseIpsecOptions } from '../../../../src/backend/ipsec/ipsec-options.ts'
import { ipsec } from '../../../../src/backend/ipsec/ipsec.ts'
import { decodeMessage, encodeMessage, encodeRequest } from '../../../../src/kernel/linux/vici.ts'
import { MemoryIke } from '../../../../src/kernel/ike.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { config, FakeSubnetManager, host } from '../backend-fixtures.ts'

const PSK = 'x'.repeat(96)

test('options: PSK required (≥ 96 characters), flannel defaults', () => {
  assert.deepEqual(parseIpsecOptions({ psk: PSK }), { psk: PSK, udpEncap: false, espProposal: 'aes128gcm16-sha256-prfsha256-ecp256' })
  assert.throws(() => parseIpsecOptions({}), /Backend\.PSK: is required: a pre-shared key of at least 96 characters/)
  assert.throws(() => parseIpsecOptions({ psk: 'short' }), /Backend\.PSK: must be at least 96 characters, got 5/)
  assert.throws(() => parseIpsecOptions({ psk: PSK, udpencap: 'yes' }), /Backend\.UDPEncap: must be a boolean/)
  assert.throws(() => parseIpsecOptions({ psk: PSK, espproposal: 'aes gcm' }), /Backend\.ESPProposal: must be a strongSwan proposal/)
})

test('VICI: messages round-trip; a request is length-prefixed with its command name', () => {
  const msg = { name: 'conn', list: ['a', 'b'], sub: { auth: 'psk', empty: [] as string[] } }
  assert.deepEqual(decodeMessage(encodeMessage(msg)), msg)
  const req = encodeRequest('version', {})
  assert.deepEqual([...req], [0, 0, 0, 9, 0, 7, ...Buffer.from('version')])
  assert.throws(() => decodeMessage(Buffer.of(3, 5, 0x61)), /truncated VICI message/)
})

test('MTU: interface − 77, − 8 more with UDPEncap; the IKE daemon is stopped with the network', async () => {
  for (const [udpencap, mtu] of [[false, 1423], [true, 1415]] as const) {
    const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
    const ike = new MemoryIke()
    const backend = ipsec(parseIpsecOptions({ psk: PSK, udpencap }), { subnetManager: new FakeSubnetManager({ subnet: '10.5.1.0/24' }), extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() }, async () => ike)
    const network = await backend.registerNetwork(config({ type: 'ipsec' }), new AbortController().signal)
    assert.equal(network.mtu, mtu)
    const ac = new AbortController()
    const done = network.run(ac.signal)
    ac.abort()
    await done
    assert.equal(ike.stopped, true)
  }
})

test('a charon that cannot start is a clear refusal', async () => {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  const backend = ipsec(parseIpsecOptions({ psk: PSK }), { subnetManager: new FakeSubnetManager({ subnet: '10.5.1.0/24' }), extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() }, async () => { throw new Error('no charon executable found') })
  await assert.rejects(backend.registerNetwork(config({ type: 'ipsec' }), new AbortController().signal), /ipsec: could not start the IKE daemon: no charon executable found/)
})
