/**
 * Acceptance (issue 4): custom vxlan VNI, Port and GBP reach the device (`ip -d link`) and the
 * wire (tcpdump on the switch while pods ping).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createTestbed } from '../helpers/testbed.ts'
import { addPodPerHost, eventually, ipJson, pingAllPairs, startCluster, startWeftdReady } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0
  ? 'needs root (network namespaces)'
  : spawnSync('sh', ['-c', 'command -v tcpdump'], { stdio: 'ignore' }).status !== 0 ? 'needs tcpdump' : false

interface Link { ifname: string; mtu: number; linkinfo?: { info_kind: string; info_data?: Record<string, unknown> } }

test('vxlan VNI 4242, Port 4790, GBP: device flannel.4242 with id/dstport/gbp, UDP 4790 on the wire', { skip, timeout: 60_000 }, async () => {
  const VNI = 4242
  const PORT = 4790
  const bed = await createTestbed({ hosts: 2 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan', VNI, Port: PORT, GBP: true } })
    const runs = await startCluster(bed)
    for (const r of runs) {
      const [link] = await ipJson<Link>(r.host, ['-d', 'link', 'show', `flannel.${VNI}`])
      const data = link?.linkinfo?.info_data ?? {}
      console.log(`# ${r.host.name}: flannel.${VNI} ${JSON.stringify(data)}`)
      assert.equal(link?.linkinfo?.info_kind, 'vxlan')
      assert.equal(data.id, VNI, 'vxlan id')
      assert.equal(data.port, PORT, 'dstport')
      assert.equal(data.local, r.host.underlayIp, 'local = the host underlay address')
      assert.equal(data.gbp, true, 'gbp flag')
      const text = (await r.host.exec('ip', '-d', 'link', 'show', `flannel.${VNI}`)).stdout
      assert.match(text, new RegExp(`vxlan id ${VNI} `))
      assert.match(text, new RegExp(`dstport ${PORT} `))
      assert.match(text, /\bgbp\b/)
      assert.equal((await r.host.run(['ip', 'link', 'show', 'flannel.1'], { allowFailure: true })).code, 1, 'no default-VNI device')
    }
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [])

    // -T vxlan decodes the custom port as VXLAN, so the VNI on the wire is checked too.
    const dump = bed.spawn(bed.switchNetns, ['tcpdump', '-i', 'br0', '-n', '-l', '-c', '4', '-T', 'vxlan', 'udp', 'and', 'dst', 'port', String(PORT)])
    await eventually('tcpdump listening', async () => /listening on br0/.test(dump.output()), 5000)
    const ping = pods[0]!.run(['ping', '-n', '-c', '6', '-i', '0.2', pods[1]!.ip], { allowFailure: true })
    let timer: NodeJS.Timeout | undefined
    const done = await Promise.race([dump.exited, new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), 5000) })])
    clearTimeout(timer)
    await ping
    const out = dump.output()
    console.log(out.trim().split('\n').map((l) => `# ${l}`).join('\n'))
    assert.notEqual(done, 'timeout', `4 packets to UDP ${PORT} captured:\n${out}`)
    const [h1, h2] = bed.hosts
    assert.match(out, new RegExp(`${h1!.underlayIp.replaceAll('.', '\\.')}\\.\\d+ > ${h2!.underlayIp.replaceAll('.', '\\.')}\\.${PORT}:`), 'h1 → h2 on the custom port')
    assert.match(out, new RegExp(`vni ${VNI}\\b`), 'VNI on the wire')
    assert.match(out, new RegExp(`${pods[0]!.ip.replaceAll('.', '\\.')} > ${pods[1]!.ip.replaceAll('.', '\\.')}: ICMP echo request`), 'the pod ping inside')
  } finally {
    await bed.destroy()
  }
})

test('vxlan Port changed between runs: the old device is recreated with the new port, same VtepMAC, pings work', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 2 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } })
    const first = await startCluster(bed)
    const pods = await addPodPerHost(first)
    assert.deepEqual(await pingAllPairs(pods), [])
    const h1 = bed.hosts[0]!
    const [before] = await ipJson<Link & { address: string; ifindex: number }>(h1, ['-d', 'link', 'show', 'flannel.1'])
    assert.equal(before?.linkinfo?.info_data?.port, 8472, 'flannel\'s default port')
    await Promise.all(first.map((r) => r.proc.stop()))

    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan', Port: 4790 } })
    const second = await Promise.all(bed.hosts.map((h) => startWeftdReady(bed, h)))
    const [after] = await ipJson<Link & { address: string; ifindex: number }>(h1, ['-d', 'link', 'show', 'flannel.1'])
    assert.equal(after?.linkinfo?.info_data?.port, 4790, 'the new port')
    assert.notEqual(after?.ifindex, before?.ifindex, 'a new device')
    assert.equal(after?.address, before?.address, 'the VtepMAC survives the re-creation')
    assert.match(second[0]!.proc.output(), /incompatible configuration; recreating it/)
    assert.equal(second[0]!.env.FLANNEL_SUBNET, first[0]!.env.FLANNEL_SUBNET)
    assert.deepEqual(await pingAllPairs(pods), [], 'pings over the new port')
  } finally {
    await bed.destroy()
  }
})
