/** wireguard: options, the key file, BackendData, the UAPI codec, and the backend on a MemoryKernel. */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseWireGuardOptions } from '../../../../src/backend/wireguard/wireguard-options.ts'
import { keyFilePath, loadPrivateKey } from '../../../../src/backend/wireguard/private-key.ts'
import { decodeWgData } from '../../../../src/backend/wireguard/backend-data.ts'
import { endpointFamily, wireguard } from '../../../../src/backend/wireguard/wireguard.ts'
import { decodeGet, encodeSet, errnoOf } from '../../../../src/kernel/linux/wireguard-uapi.ts'
import { generatePrivateKey, keyToHex, publicKeyOf } from '../../../../src/kernel/wireguard-keys.ts'
import { formatCidr } from '../../../../src/ip/ip.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { config, FakeSubnetManager, host, ip, lease, net, until } from '../backend-fixtures.ts'

const dir = mkdtempSync(join(tmpdir(), 'weft-wg-unit-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const hasWg = (() => { try { execFileSync('wg', ['--version']); return true } catch { return false } })()

test('options: flannel defaults and field errors', () => {
  assert.deepEqual(parseWireGuardOptions({}), { listenPort: 51820, listenPortV6: 51821, mtu: 0, persistentKeepaliveInterval: 0, mode: 'separate' })
  const psk = generatePrivateKey()
  assert.equal(parseWireGuardOptions({ psk, mode: 'auto' }).psk, psk)
  assert.throws(() => parseWireGuardOptions({ psk: 'secret' }), /Backend\.PSK: must be a WireGuard key: 32 bytes in base64/)
  assert.throws(() => parseWireGuardOptions({ mode: 'Auto' }), /Backend\.Mode: must be one of separate, auto, ipv4, ipv6, got string "Auto"/)
  assert.throws(() => parseWireGuardOptions({ listenport: 0 }), /Backend\.ListenPort: must be in 1\.\.65535/)
  assert.throws(() => parseWireGuardOptions({ mtu: 100 }), /Backend\.MTU: must be 0 .* or in 148\.\.65535/)
  assert.throws(() => parseWireGuardOptions({ persistentkeepalive: 5 }), /unknown key "persistentkeepalive"; expected one of Type, ListenPort/)
})

test('keys: node:crypto X25519 agrees with wg pubkey', { skip: hasWg ? false : 'needs wireguard-tools (wg)' }, () => {
  const k = generatePrivateKey()
  assert.equal(publicKeyOf(k), execFileSync('wg', ['pubkey'], { input: `${k}\n` }).toString().trim())
})

test('key file: created 0400 once, then reused; a malformed file is an error naming it', () => {
  const file = join(dir, 'sub', 'wgkey')
  const first = loadPrivateKey(file)
  assert.equal(first.created, true)
  assert.equal(statSync(file).mode & 0o777, 0o400)
  const second = loadPrivateKey(file)
  assert.deepEqual([second.created, second.publicKey], [false, first.publicKey])
  const bad = join(dir, 'bad')
  writeFileSync(bad, 'not a key')
  assert.throws(() => loadPrivateKey(bad), new RegExp(`${bad} does not hold a WireGuard private key`))
  assert.equal(keyFilePath({ WIREGUARD_KEY_FILE: '/x' }), '/x')
  assert.equal(keyFilePath({}), '/run/flannel/wgkey')
})

test('BackendData: flannel field names, case-insensitive; bad keys refused', () => {
  const k = publicKeyOf(generatePrivateKey())
  assert.deepEqual(decodeWgData({ publickey: k }), { ok: true, data: { publicKey: k, port: 0 } })
  assert.equal(decodeWgData({ PublicKey: 'x', Port: 1 }).ok, false)
  assert.equal(decodeWgData('str').ok, false)
})

test('UAPI: set request and get answer as wireguard-go speaks them', () => {
  const priv = generatePrivateKey()
  const peer = publicKeyOf(generatePrivateKey())
  const text = encodeSet({ privateKey: priv, listenPort: 51820, replacePeers: true, removePeers: [peer], peers: [{ publicKey: peer, endpoint: { ip: ip('fd00::2'), port: 51821 }, allowedIPs: [net('10.5.3.0/24')], persistentKeepalive: 25 }] })
  assert.equal(text, [
    'set=1', `private_key=${keyToHex(priv)}`, 'listen_port=51820', 'replace_peers=true', `public_key=${keyToHex(peer)}`, 'remove=true',
    `public_key=${keyToHex(peer)}`, `preshared_key=${'0'.repeat(64)}`, 'endpoint=[fd00::2]:51821', 'persistent_keepalive_interval=25',
    'replace_allowed_ips=true', 'allowed_ip=10.5.3.0/24', '', '',
  ].join('\n'))
  const answer = `private_key=${keyToHex(priv)}\nlisten_port=51820\npublic_key=${keyToHex(peer)}\npreshared_key=${'0'.repeat(64)}\nendpoint=192.168.1.3:51820\nlast_handshake_time_sec=0\npersistent_keepalive_interval=0\nallowed_ip=10.5.3.0/24\nallowed_ip=10.5.4.0/24\nerrno=0\n\n`
  const state = decodeGet(answer)
  assert.equal(state.publicKey, publicKeyOf(priv))
  assert.deepEqual(state.peers.map((p) => [p.publicKey, p.endpoint?.port, p.allowedIPs.map(formatCidr), p.presharedKey, p.persistentKeepalive]), [[peer, 51820, ['10.5.3.0/24', '10.5.4.0/24'], undefined, undefined]])
  assert.equal(errnoOf(answer), 0)
  assert.ok(Number.isNaN(errnoOf('listen_port=1\n')))
})

test('Mode auto picks the endpoint family as flannel selectMode does', async () => {
  const { extIface } = await host({ v4: '192.168.1.2/24', v6: 'fd00::2/64' })
  const both = (v4: string, v6: string) => lease({ type: 'wireguard', subnet: '10.5.3.0/24', publicIP: v4, publicIPv6: v6 })
  assert.equal(endpointFamily('auto', both('192.168.1.3', 'fd00::3'), extIface), 4, 'both private: IPv4')
  assert.equal(endpointFamily('auto', both('8.8.8.8', 'fd00::3'), extIface), 4)
  assert.equal(endpointFamily('ipv6', both('192.168.1.3', 'fd00::3'), extIface), 6)
  assert.equal(endpointFamily('auto', lease({ type: 'wireguard', subnet: '10.5.3.0/24', publicIP: '192.168.1.3' }), extIface), 4)
})

test('dual stack separate: two devices, ports per family, peers on each; deleted device recreated and replayed', async () => {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24', v6: 'fd00::2/64' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24', ipv6Subnet: 'fd10::/64' })
  const backend = wireguard(parseWireGuardOptions({}), { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() }, join(dir, 'dual-key'))
  const network = await backend.registerNetwork(config({ type: 'wireguard', v4: '10.5.0.0/16', v6: 'fd10::/48' }), new AbortController().signal)
  const acquired = sm.acquired[0]!
  const own = loadPrivateKey(join(dir, 'dual-key')).publicKey
  assert.deepEqual([acquired.backendData, acquired.backendV6Data], [{ PublicKey: own, Port: 51820 }, { PublicKey: own, Port: 51821 }])
  assert.equal(network.mtu, 1420)
  assert.deepEqual([(await kernel.getWireGuard('flannel-wg'))?.listenPort, (await kernel.getWireGuard('flannel-wg-v6'))?.listenPort], [51820, 51821])
  const ac = new AbortController()
  const done = network.run(ac.signal)
  try {
    const k3 = publicKeyOf(generatePrivateKey())
    sm.added(lease({ type: 'wireguard', subnet: '10.5.3.0/24', ipv6Subnet: 'fd10:0:0:3::/64', publicIP: '192.168.1.3', publicIPv6: 'fd00::3', data: { PublicKey: k3, Port: 51820 }, v6data: { PublicKey: k3, Port: 51821 } }))
    const peersOf = async (dev: string): Promise<string[]> => ((await kernel.getWireGuard(dev))?.peers ?? []).map((p) => `${p.allowedIPs.map(formatCidr).join(',')} ${p.endpoint?.port}`)
    await until(() => kernel.calls('configureWireGuard').length >= 4)
    assert.deepEqual(await peersOf('flannel-wg'), ['10.5.3.0/24 51820'])
    assert.deepEqual(await peersOf('flannel-wg-v6'), ['fd10:0:0:3::/64 51821'])
    const v6 = await kernel.getLink('flannel-wg-v6')
    await kernel.deleteLink(v6!.index)
    await until(() => kernel.calls('createWireGuard').length === 3)
    await until(() => kernel.calls('configureWireGuard').length >= 6)
    assert.deepEqual(await peersOf('flannel-wg-v6'), ['fd10:0:0:3::/64 51821'], 'the recreated device got its peer back')
  } finally {
    ac.abort()
    await done
  }
  assert.equal(await kernel.getLink('flannel-wg'), undefined, 'devices removed on shutdown')
})
