/**
 * wireguard backend end to end with userspace WireGuard (wireguard-go; this kernel has no
 * WireGuard module): four hosts reach a full pod mesh; a capture of the underlay shows only UDP
 * to the WireGuard port and no pod ICMP or payload in clear; a peer deleted by hand is put back;
 * a restarted host keeps its public key; stopping weftd removes its device.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createTestbed, type Testbed, type TestHost } from '../helpers/testbed.ts'
import { addPodPerHost, eventually, ipJson, pingAllPairs, startWeftdReady, type ReadyWeftd } from '../helpers/weftd.ts'
import { pingUntil } from '../helpers/netns.ts'
import { decodeGet, encodeSet, uapiRequest } from '../../src/kernel/linux/wireguard-uapi.ts'
import { generatePrivateKey, publicKeyOf } from '../../src/kernel/wireguard-keys.ts'

const skip = process.getuid?.() !== 0
  ? 'needs root (network namespaces)'
  : spawnSync('sh', ['-c', 'command -v wireguard-go && command -v tcpdump && command -v etcd'], { stdio: 'ignore' }).status !== 0
    ? 'needs wireguard-go, tcpdump and etcd (scripts/setup.sh installs them)'
    : false

const PSK = generatePrivateKey()
const CONFIG = { Network: '10.5.0.0/16', Backend: { Type: 'wireguard', PSK, PersistentKeepaliveInterval: 25 } }
const keyFile = (bed: Testbed, h: TestHost): string => join(bed.workDir, `${h.name}-wgkey`)
const start = (bed: Testbed, h: TestHost): Promise<ReadyWeftd> => startWeftdReady(bed, h, [], { env: { WIREGUARD_KEY_FILE: keyFile(bed, h) } })
/** Our UAPI socket for a host (weftd puts it under the namespace's inode outside the host namespace). */
const socketOf = (h: TestHost): string => `/var/run/wireguard/netns-${statSync(`/var/run/netns/${h.netns}`).ino}/flannel-wg.sock`

/** IPv4 packets of an Ethernet pcap: protocol, destination port (UDP) and the bytes after the IP header. */
function packets(file: string): Array<{ proto: number; dport?: number; payload: Buffer }> {
  const buf = readFileSync(file)
  const out: Array<{ proto: number; dport?: number; payload: Buffer }> = []
  for (let off = 24; off + 16 <= buf.length;) {
    const caplen = buf.readUInt32LE(off + 8)
    const frame = buf.subarray(off + 16, off + 16 + caplen)
    off += 16 + caplen
    if (frame.readUInt16BE(12) !== 0x0800) continue
    const ihl = ((frame[14] as number) & 15) * 4
    const proto = frame[23] as number
    out.push({ proto, ...(proto === 17 ? { dport: frame.readUInt16BE(14 + ihl + 2) } : {}), payload: frame.subarray(14 + ihl) })
  }
  return out
}

test('wireguard: 4-host pod mesh over wireguard-go, encrypted underlay, peer repair, key kept across restart', { skip, timeout: 240_000 }, async () => {
  const bed = await createTestbed({ hosts: 4 })
  try {
    await bed.putNetworkConfig(CONFIG)
    const hosts = bed.hosts as [TestHost, TestHost, TestHost, TestHost]
    const runs = await Promise.all(hosts.map((h) => start(bed, h)))
    const [h1, h2] = hosts

    // Leases and devices as flannel's: BackendData {"PublicKey","Port"}, key from the key file.
    const leases = await bed.getLeases()
    assert.equal(leases.length, 4)
    for (const h of hosts) {
      const l = leases.find((x) => x.attrs.PublicIP === h.underlayIp)
      assert.equal(l?.attrs.BackendType, 'wireguard')
      assert.deepEqual(l?.attrs.BackendData, { PublicKey: publicKeyOf(readFileSync(keyFile(bed, h), 'utf8')), Port: 51820 })
    }
    assert.equal((statSync(keyFile(bed, h1)).mode & 0o777).toString(8), '400')
    assert.equal(runs[0]!.env.FLANNEL_MTU, '1420', '1500 − 80')
    const [dev] = await ipJson<{ mtu: number; operstate: string; flags: string[] }>(h1, ['link', 'show', 'flannel-wg'])
    assert.equal(dev?.mtu, 1420)
    assert.ok(dev?.flags.includes('UP'))
    const [route] = await ipJson<{ dev: string; scope: string }>(h1, ['route', 'show', 'exact', '10.5.0.0/16'])
    assert.deepEqual([route?.dev, route?.scope], ['flannel-wg', 'link'])
    assert.match(runs[0]!.proc.output(), /userspace WireGuard \(wireguard-go\)/)

    // One peer per remote lease, with the PSK and keepalive of the config.
    const state = decodeGet(await uapiRequest(socketOf(h1), 'get=1\n\n'))
    assert.equal(state.listenPort, 51820)
    assert.equal(state.peers.length, 3)
    for (const p of state.peers) assert.deepEqual([p.presharedKey, p.persistentKeepalive], [PSK, 25])

    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods, 4, 20_000), [], 'full pod mesh')

    // The underlay carries WireGuard only: UDP to 51820, no ICMP, no pod payload in clear.
    const pcap = join(bed.workDir, 'wg.pcap')
    const cap = bed.spawn(h1.netns, ['tcpdump', '-n', '-U', '-i', 'eth0', '-w', pcap, 'ip and not port 2379'])
    await new Promise((r) => setTimeout(r, 1000))
    const PATTERN = 'c0ffee15deadbeef'
    const ping = await pods[0]!.run(['ping', '-n', '-c5', '-i0.2', '-p', PATTERN, pods[1]!.ip], { allowFailure: true })
    assert.equal(ping.code, 0, ping.stdout + ping.stderr)
    await new Promise((r) => setTimeout(r, 500))
    await cap.stop()
    const seen = packets(pcap)
    assert.ok(seen.length >= 10, `captured ${seen.length} packets`)
    assert.equal(seen.filter((p) => p.proto === 1).length, 0, 'no ICMP on the underlay')
    const notWg = seen.filter((p) => !(p.proto === 17 && (p.dport === 51820 || p.payload.readUInt16BE(0) === 51820)))
    assert.deepEqual(notWg.map((p) => `proto ${p.proto} dport ${p.dport}`), [], 'only WireGuard UDP between the hosts')
    const clear = Buffer.from(PATTERN, 'hex')
    assert.equal(seen.filter((p) => p.payload.includes(clear)).length, 0, 'the ping payload never appears in clear')
    // WireGuard message types 1..4 right after the UDP header.
    assert.ok(seen.every((p) => [1, 2, 3, 4].includes(p.payload[8] as number)), 'every datagram is a WireGuard message')

    // A peer deleted by hand is put back by the periodic check (WireGuard has no notifications).
    const h2Key = publicKeyOf(readFileSync(keyFile(bed, h2), 'utf8'))
    await uapiRequest(socketOf(h1), encodeSet({ removePeers: [h2Key] }))
    assert.equal(decodeGet(await uapiRequest(socketOf(h1), 'get=1\n\n')).peers.some((p) => p.publicKey === h2Key), false)
    await eventually('h1 re-adds the peer of h2', async () => decodeGet(await uapiRequest(socketOf(h1), 'get=1\n\n')).peers.some((p) => p.publicKey === h2Key), 20_000, 200)
    assert.ok((await pingUntil(pods[0]!.netns, pods[1]!.ip, { timeoutMs: 10_000 })).ok, 'pods ping again after the repair')

    // Restart h1: same key, same lease data; its device is removed while it is stopped.
    await runs[0]!.proc.stop()
    await eventually('flannel-wg removed on shutdown', async () => (await h1.run(['ip', 'link', 'show', 'flannel-wg'], { allowFailure: true })).code !== 0, 10_000)
    const again = await start(bed, h1)
    runs[0] = again
    const after = (await bed.getLeases()).find((x) => x.attrs.PublicIP === h1.underlayIp)
    assert.deepEqual(after?.attrs.BackendData, leases.find((x) => x.attrs.PublicIP === h1.underlayIp)?.attrs.BackendData, 'public key kept across the restart')
    assert.deepEqual(await pingAllPairs(pods, 4, 20_000), [], 'full mesh after the restart')
  } finally {
    await bed.destroy()
  }
})
