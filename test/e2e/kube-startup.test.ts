/**
 * Acceptance (issue 13): kube-mode start-up seen by an operator. A wrong token ends weftd at once
 * with one line naming the API server and the 401, and no subnet.env; a node without a podCIDR
 * is waited for — the fix in the log and on /readyz — and weftd starts as soon as it is set.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { eventually } from '../helpers/weftd.ts'
import { kubeconfigFor, registerNodes, startKubeWeftd, writeNetConf } from '../helpers/weftd-kube.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

/** GET inside the host's namespace (the test process cannot reach it): status and body. */
async function httpGet(host: TestHost, url: string): Promise<{ status: number; body: string }> {
  const script = `fetch(${JSON.stringify(url)}).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))`
  return JSON.parse((await host.exec(process.execPath, '-e', script)).stdout) as { status: number; body: string }
}

test('kube mode: a wrong token exits non-zero with one clear line and writes no subnet.env', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 1, etcd: false, kubeApi: { ipam: { clusterCidrs: ['10.244.0.0/16'] } } })
  try {
    await registerNodes(bed)
    const netConf = writeNetConf(bed, { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } })
    const run = startKubeWeftd(bed, bed.hosts[0]!, netConf, { kubeconfig: kubeconfigFor(bed, { token: 'wrong-token' }) })
    const exit = await run.proc.exited
    assert.notEqual(exit.code, 0)
    const lines = run.proc.output().split('\n').filter((l) => l.startsWith('weftd: '))
    assert.equal(lines.length, 1, run.proc.output())
    assert.match(lines[0]!, new RegExp(`${bed.kubeApi!.url.replace(/[.]/g, '\\.')}.*401 Unauthorized`))
    assert.equal(existsSync(run.subnetFile), false)
  } finally {
    await bed.destroy()
  }
})

test('kube mode: no podCIDR yet — waits, says how to fix it on the log and /readyz, starts once set', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 1, etcd: false, kubeApi: true })
  try {
    await registerNodes(bed)
    const host = bed.hosts[0]!
    const netConf = writeNetConf(bed, { Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } })
    const run = startKubeWeftd(bed, host, netConf, { extra: ['--healthz-ip=127.0.0.1', '--healthz-port=8471'] })
    await eventually('the waiting log line', async () => /waiting for a podCIDR/.test(run.proc.output()), 10_000)
    const readyz = await httpGet(host, 'http://127.0.0.1:8471/readyz')
    assert.equal(readyz.status, 503)
    assert.match(readyz.body, /^flanneld is not ready yet: node "h1" has no podCIDR yet: run kube-controller-manager with --allocate-node-cidrs=true/)
    assert.match(run.proc.output(), /spec\.podCIDR/)
    assert.ok(run.proc.isRunning(), 'no CrashLoop: still running')
    assert.equal(existsSync(run.subnetFile), false)
    await bed.kubeApi!.admin.setPodCidr('h1', '10.244.77.0/24')
    const t0 = Date.now()
    await eventually('subnet.env', async () => existsSync(run.subnetFile), 10_000, 20)
    console.log(`# subnet.env ${Date.now() - t0} ms after the podCIDR was set`)
    assert.deepEqual(await httpGet(host, 'http://127.0.0.1:8471/readyz'), { status: 200, body: 'flanneld is ready' })
  } finally {
    await bed.destroy()
  }
})
