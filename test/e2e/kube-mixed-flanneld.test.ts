/**
 * Acceptance (issue 13): a cluster with the real flanneld in kube mode on half the nodes and
 * weftd on the other half, against the same API emulator: a full pod mesh, the same annotation
 * keys and JSON shapes on every node, NetworkUnavailable=False everywhere.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed } from '../helpers/testbed.ts'
import { addPodPerHost, pingAllPairs, type ReadyWeftd } from '../helpers/weftd.ts'
import { kubeconfigFor, registerNodes, startKubeWeftdReady, writeNetConf } from '../helpers/weftd-kube.ts'
import { flanneldSkipReason, startKubeFlanneldReady } from '../helpers/flanneld.ts'

const skip = flanneldSkipReason()
const P = 'flannel.alpha.coreos.com/'
type NodeView = { metadata: { annotations: Record<string, string> }; status: { conditions?: Array<Record<string, string>> } }

/** An annotation value's shape: its JSON keys and value types, or 'text'. */
function shape(value: string | undefined): string {
  if (value === undefined) return 'absent'
  try {
    const v = JSON.parse(value) as unknown
    if (v === null || typeof v !== 'object') return v === null ? 'null' : typeof v
    return Object.entries(v).map(([k, x]) => `${k}:${typeof x}`).join(',')
  } catch {
    return 'text'
  }
}

for (const backend of ['vxlan', 'host-gw'] as const) {
  test(`mixed kube cluster, ${backend}: flanneld on h1/h3, weftd on h2/h4`, { skip, timeout: 120_000 }, async () => {
    const bed = await createTestbed({ hosts: 4, etcd: false, kubeApi: { ipam: { clusterCidrs: ['10.244.0.0/16'] } } })
    try {
      const api = bed.kubeApi!
      await registerNodes(bed)
      const netConf = writeNetConf(bed, { Network: '10.244.0.0/16', Backend: { Type: backend } })
      const kubeconfig = kubeconfigFor(bed, { tokenFile: false })
      const runs: ReadyWeftd[] = await Promise.all(bed.hosts.map((h, i) => i % 2 === 0
        ? startKubeFlanneldReady(bed, h, kubeconfig, netConf)
        : startKubeWeftdReady(bed, h, netConf, { kubeconfig })))
      const pods = await addPodPerHost(runs)
      assert.deepEqual(await pingAllPairs(pods, 4, 20_000), [])

      const nodes = await Promise.all(bed.hosts.map(async (h) => await api.admin.getNode(h.name) as unknown as NodeView))
      const ours = (n: NodeView): Record<string, string> => Object.fromEntries(Object.entries(n.metadata.annotations).filter(([k]) => k.startsWith(P)))
      const [f1, w2, f3, w4] = nodes.map(ours)
      console.log(`# flanneld h1: ${JSON.stringify(f1)}\n# weftd h2: ${JSON.stringify(w2)}`)
      for (const w of [w2!, w4!]) {
        assert.deepEqual(Object.keys(w).sort(), Object.keys(f1!).sort(), 'same annotation keys as flanneld')
        for (const key of Object.keys(f1!)) assert.equal(shape(w[key]), shape(f1![key]), `same JSON shape of ${key}`)
      }
      for (const f of [f1!, f3!]) assert.equal(f[`${P}kube-subnet-manager`], 'true')
      for (const [i, n] of nodes.entries()) {
        const c = n.status.conditions?.find((x) => x.type === 'NetworkUnavailable')
        assert.equal(c?.status, 'False', `${bed.hosts[i]!.name} NetworkUnavailable`)
        assert.equal(c?.reason, 'FlannelIsUp')
      }
    } finally {
      await bed.destroy()
    }
  })
}
