/**
 * The real flanneld (v0.20.2, built outside the repo by ../shared/tools/build-flanneld.sh) for
 * mixed-cluster tests. Its path: WEFT_FLANNELD, else /opt/flannel-peer/bin/flanneld; tests skip
 * with this reason when neither exists.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Testbed, TestHost } from './testbed.ts'
import type { ReadyWeftd } from './weftd.ts'
import { waitForSubnetEnv } from './pods.ts'
import { eventually } from './weftd.ts'

export const FLANNELD = process.env.WEFT_FLANNELD ?? '/opt/flannel-peer/bin/flanneld'

export function flanneldSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)'
  return existsSync(FLANNELD) ? false : `no flanneld binary at ${FLANNELD} (set WEFT_FLANNELD, or build it with ../shared/tools/build-flanneld.sh)`
}

/** Starts flanneld in kube mode on a host (NODE_NAME = host name) and waits for its subnet.env. */
export async function startKubeFlanneldReady(bed: Testbed, host: TestHost, kubeconfig: string, netConf: string, extra: readonly string[] = []): Promise<ReadyWeftd> {
  const subnetFile = join(bed.workDir, `${host.name}-subnet.env`)
  const proc = host.spawn([FLANNELD, '--kube-subnet-mgr', `--kubeconfig-file=${kubeconfig}`, `--net-config-path=${netConf}`, '--iface=eth0', `--subnet-file=${subnetFile}`, ...extra], { env: { NODE_NAME: host.name } })
  try {
    await eventually(`flanneld's ${subnetFile}`, async () => {
      if (!proc.isRunning()) throw new Error('flanneld exited')
      return existsSync(subnetFile)
    }, 30_000, 100)
    const env = await waitForSubnetEnv(host, subnetFile, { timeoutMs: 2000 })
    return { proc, subnetFile, host, env }
  } catch (err) {
    throw new Error(`${(err as Error).message}\nflanneld output:\n${proc.output()}`, { cause: err })
  }
}
