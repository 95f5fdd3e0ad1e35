/**
 * Acceptance (issue 13): kube mode with dual-stack podCIDRs (one IPv4, one IPv6 per node) on an
 * IPv6 underlay: both subnets leased from spec.podCIDRs, flanneld's v6 annotations written, and
 * pods ping each other over IPv4 and IPv6.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed } from '../helpers/testbed.ts'
import { addPodPerHost, pingAllPairs } from '../helpers/weftd.ts'
import { registerNodes, startKubeCluster, writeNetConf } from '../helpers/weftd-kube.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false
const P = 'flannel.alpha.coreos.com/'

for (const backend of ['vxlan', 'host-gw'] as const) {
  test(`kube mode dual stack, ${backend}: both podCIDRs leased, v6 annotations, ping and ping -6`, { skip, timeout: 90_000 }, async () => {
    const bed = await createTestbed({ hosts: 3, ipv6: true, etcd: false, kubeApi: { ipam: { clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'] } } })
    try {
      await registerNodes(bed)
      const netConf = writeNetConf(bed, { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', Backend: { Type: backend } })
      const runs = await startKubeCluster(bed, netConf)
      for (const [i, run] of runs.entries()) {
        const node = await bed.kubeApi!.admin.getNode(bed.hosts[i]!.name) as { spec: { podCIDRs: string[] }; metadata: { annotations: Record<string, string> } }
        const v6 = node.spec.podCIDRs.find((c) => c.includes(':'))!
        assert.equal(run.env.FLANNEL_IPV6_SUBNET, v6.replace(/::\/64$/, '::1/64'))
        assert.equal(run.env.FLANNEL_IPV6_NETWORK, 'fd00:10:244::/56')
        const ann = node.metadata.annotations
        assert.equal(ann[`${P}public-ipv6`], bed.hosts[i]!.underlayIpv6)
        if (backend === 'vxlan') assert.match(ann[`${P}backend-v6-data`] ?? '', /^\{"VNI":1,"VtepMAC":"[0-9a-f:]{17}"\}$/)
        else assert.equal(ann[`${P}backend-v6-data`], 'null')
      }
      const pods = await addPodPerHost(runs, { ipv6: true })
      assert.deepEqual(await pingAllPairs(pods, 4), [], 'IPv4 mesh')
      assert.deepEqual(await pingAllPairs(pods, 6), [], 'IPv6 mesh (ping -6)')
    } finally {
      await bed.destroy()
    }
  })
}
