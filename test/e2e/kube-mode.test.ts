/**
 * Acceptance (issue 13): weftd in Kubernetes mode on four hosts, against the API emulator in its
 * own namespace over TLS with a service-account token: every host leases its node's podCIDR,
 * writes flanneld's annotations and NetworkUnavailable=False, and pods reach each other.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed } from '../helpers/testbed.ts'
import { addPodPerHost, pingAllPairs } from '../helpers/weftd.ts'
import { registerNodes, startKubeCluster, writeNetConf } from '../helpers/weftd-kube.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false
const P = 'flannel.alpha.coreos.com/'

for (const backend of ['vxlan', 'host-gw'] as const) {
  test(`kube mode, ${backend}: four hosts lease their podCIDRs and reach a full pod mesh`, { skip, timeout: 90_000 }, async () => {
    const bed = await createTestbed({ hosts: 4, etcd: false, kubeApi: { ipam: { clusterCidrs: ['10.244.0.0/16'] } } })
    try {
      const api = bed.kubeApi!
      await registerNodes(bed)
      const netConf = writeNetConf(bed, { Network: '10.244.0.0/16', Backend: { Type: backend } })
      const runs = await startKubeCluster(bed, netConf)
      for (const [i, run] of runs.entries()) {
        const node = await api.admin.getNode(bed.hosts[i]!.name) as { spec: { podCIDR: string }; metadata: { annotations: Record<string, string> } }
        assert.equal(run.env.FLANNEL_SUBNET, node.spec.podCIDR.replace(/\.0\/24$/, '.1/24'), 'subnet.env holds the node\'s podCIDR')
        assert.equal(run.env.FLANNEL_NETWORK, '10.244.0.0/16')
        const ann = node.metadata.annotations
        assert.equal(ann[`${P}kube-subnet-manager`], 'true')
        assert.equal(ann[`${P}backend-type`], backend)
        assert.equal(ann[`${P}public-ip`], bed.hosts[i]!.underlayIp)
        if (backend === 'vxlan') assert.match(ann[`${P}backend-data`] ?? '', /^\{"VNI":1,"VtepMAC":"([0-9a-f]{2}:){5}[0-9a-f]{2}"\}$/)
        else assert.equal(ann[`${P}backend-data`], 'null')
      }
      const pods = await addPodPerHost(runs)
      assert.deepEqual(await pingAllPairs(pods), [])
      const conditions = await Promise.all(bed.hosts.map(async (h) => {
        const node = await api.admin.getNode(h.name) as { status: { conditions?: Array<Record<string, string>> } }
        return node.status.conditions?.find((c) => c.type === 'NetworkUnavailable')
      }))
      for (const c of conditions) {
        assert.equal(c?.status, 'False')
        assert.equal(c?.reason, 'FlannelIsUp')
        assert.equal(c?.message, 'Flannel is running on this node')
      }
    } finally {
      await bed.destroy()
    }
  })
}
