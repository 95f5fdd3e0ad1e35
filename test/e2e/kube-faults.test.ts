/**
 * Acceptance (issue 13): kube mode under the faults a cluster has — a node deleted, the API
 * server down for 30 s, a watch that expires (410) while a node goes away, a rotated
 * service-account token, another node's bad annotations — on three vxlan hosts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed, type Testbed, type TestHost } from '../helpers/testbed.ts'
import { addPodPerHost, eventually, ipJson, pingAllPairs } from '../helpers/weftd.ts'
import { registerNodes, startKubeCluster, writeNetConf } from '../helpers/weftd-kube.ts'
import { pingUntil } from '../helpers/netns.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false
const P = 'flannel.alpha.coreos.com/'

const hasRoute = async (host: TestHost, dst: string): Promise<boolean> => (await ipJson(host, ['route', 'show', 'exact', dst])).length > 0

/** A hand-made peer node as flanneld would have annotated it. */
async function addPeerNode(bed: Testbed, name: string, podCIDR: string, publicIp: string, mac: string): Promise<void> {
  await bed.kubeApi!.admin.createNode({
    name, podCIDR,
    annotations: { [`${P}kube-subnet-manager`]: 'true', [`${P}backend-type`]: 'vxlan', [`${P}public-ip`]: publicIp, [`${P}backend-data`]: `{"VNI":1,"VtepMAC":"${mac}"}` },
  })
}

async function kubeBed(hosts: number): Promise<{ bed: Testbed; netConf: string }> {
  const bed = await createTestbed({ hosts, etcd: false, kubeApi: { ipam: { clusterCidrs: ['10.244.0.0/16'] }, tuning: { bookmarkIntervalMs: 1000 } } })
  await registerNodes(bed)
  return { bed, netConf: writeNetConf(bed, { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } }) }
}

test('kube mode: node deleted, 410 mid-stream, token rotated, bad annotations', { skip, timeout: 120_000 }, async () => {
  const { bed, netConf } = await kubeBed(3)
  try {
    const admin = bed.kubeApi!.admin
    const runs = await startKubeCluster(bed, netConf)
    const [h1, h2] = bed.hosts as [TestHost, TestHost, TestHost]

    // A node deleted: its route goes from the others.
    await addPeerNode(bed, 'gone', '10.244.200.0/24', '10.200.0.200', '0e:00:00:00:00:c8')
    await eventually('h1 routes the new node', () => hasRoute(h1, '10.244.200.0/24'), 5000)
    await admin.deleteNode('gone')
    await eventually('h1 drops the deleted node', async () => !(await hasRoute(h1, '10.244.200.0/24')), 5000)

    // 410 in the middle: the history is compacted and the streams cut while a node goes away
    // unseen; the re-list's snapshot removes it and keeps the rest.
    await addPeerNode(bed, 'expired', '10.244.201.0/24', '10.200.0.201', '0e:00:00:00:00:c9')
    await eventually('h1 routes it', () => hasRoute(h1, '10.244.201.0/24'), 5000)
    await admin.down('hang')
    await admin.deleteNode('expired')
    await admin.compact()
    await admin.up()
    await admin.closeWatches()
    await eventually('the re-list removes the node deleted during the gap', async () => !(await hasRoute(h1, '10.244.201.0/24')), 15_000)
    assert.match(runs[0]!.proc.output(), /410|re-listing/, 'weftd says it re-listed')
    const h2Subnet = runs[1]!.env.FLANNEL_SUBNET!.replace(/\.1\//, '.0/')
    assert.ok(await hasRoute(h1, h2Subnet), 'the live peers are kept')

    // Token rotated (the kubelet rewrites the token file, the old token is revoked): the next watch
    // uses the new one.
    await admin.rotateToken()
    await admin.closeWatches()
    await addPeerNode(bed, 'after-rotation', '10.244.202.0/24', '10.200.0.202', '0e:00:00:00:00:ca')
    await eventually('h2 routes a node added after the rotation', () => hasRoute(h2, '10.244.202.0/24'), 15_000)

    // Another node's bad data: skipped with a warning naming it; everything else unharmed.
    await bed.kubeApi!.admin.createNode({ name: 'broken', podCIDR: '10.244.203.0/24', annotations: { [`${P}kube-subnet-manager`]: 'true', [`${P}backend-type`]: 'vxlan', [`${P}public-ip`]: 'not-an-ip', [`${P}backend-data`]: '{"VNI":1' } })
    await eventually('the warning', async () => /skipping node with unusable flannel data.*broken/.test(runs[0]!.proc.output()), 5000)
    assert.equal(await hasRoute(h1, '10.244.203.0/24'), false)
    for (const r of runs) assert.ok(r.proc.isRunning(), `${r.host.name} still runs`)
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [])
  } finally {
    await bed.destroy()
  }
})

test('kube mode: the API server down for 30 s keeps the data plane; the watch resumes', { skip, timeout: 120_000 }, async () => {
  const { bed, netConf } = await kubeBed(2)
  try {
    const admin = bed.kubeApi!.admin
    const runs = await startKubeCluster(bed, netConf)
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [])
    await admin.down('down')
    const started = Date.now()
    let lost = 0
    let sent = 0
    while (Date.now() - started < 30_000) {
      sent++
      const r = await pingUntil(pods[0]!.netns, pods[1]!.ip, { timeoutMs: 1000, intervalMs: 200 })
      if (!r.ok) lost++
      await new Promise((res) => setTimeout(res, 1000))
    }
    await admin.up()
    console.log(`# API down 30 s: ${lost}/${sent} ping rounds failed`)
    assert.equal(lost, 0, 'pods keep talking while the API server is down')
    await addPeerNode(bed, 'late', '10.244.210.0/24', '10.200.0.210', '0e:00:00:00:00:d2')
    const t0 = Date.now()
    await eventually('a node added after the API came back is routed', () => hasRoute(bed.hosts[0]!, '10.244.210.0/24'), 15_000)
    console.log(`# routed ${Date.now() - t0} ms after the API returned`)
    for (const r of runs) assert.ok(r.proc.isRunning())
  } finally {
    await bed.destroy()
  }
})
