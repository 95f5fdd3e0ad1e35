/**
 * Acceptance (issue 17), kube mode: `weft doctor --kube-subnet-mgr` with NODE_NAME reads the
 * nodes from the API emulator: a node without a podCIDR is podcidr-unassigned; two weftd hosts
 * with podCIDRs are healthy (exit 0).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { WEFT } from '../helpers/weftd.ts'
import { kubeconfigFor, registerNodes, startKubeCluster, writeNetConf } from '../helpers/weftd-kube.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

test('weft doctor, kube mode: podcidr-unassigned on a node without one; healthy hosts exit 0', { skip, timeout: 90_000 }, async () => {
  const bed = await createTestbed({ hosts: 3, etcd: false, kubeApi: true })
  try {
    await registerNodes(bed)
    const [h1, h2, h3] = bed.hosts as [TestHost, TestHost, TestHost]
    await bed.kubeApi!.admin.setPodCidr(h1.name, '10.244.1.0/24')
    await bed.kubeApi!.admin.setPodCidr(h2.name, '10.244.2.0/24')
    const netConf = writeNetConf(bed, { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } })
    await startKubeCluster(bed, netConf, {}, [h1, h2])
    const doctor = async (h: TestHost): Promise<{ code: number | null; codes: string[]; out: string }> => {
      const r = await h.run([process.execPath, WEFT, 'doctor', '--json', '--kube-subnet-mgr', `--kubeconfig-file=${kubeconfigFor(bed)}`, `--net-config-path=${netConf}`, '--iface=eth0', `--subnet-file=${join(bed.workDir, `${h.name}-subnet.env`)}`],
        { allowFailure: true, timeoutMs: 30_000, env: { NODE_NAME: h.name } })
      const report = JSON.parse(r.stdout) as { findings: Array<{ code: string }> }
      return { code: r.code, codes: [...new Set(report.findings.map((f) => f.code))], out: r.stdout + r.stderr }
    }
    const [d1, d2, d3] = await Promise.all([doctor(h1), doctor(h2), doctor(h3)])
    assert.deepEqual(d1.codes, [], d1.out)
    assert.equal(d1.code, 0)
    assert.deepEqual(d2.codes, [], d2.out)
    assert.ok(d3.codes.includes('podcidr-unassigned'), d3.out)
    assert.match(d3.out, /node h3 has no spec.podCIDR/)
    assert.equal(d3.code, 1)
  } finally {
    await bed.destroy()
  }
})
