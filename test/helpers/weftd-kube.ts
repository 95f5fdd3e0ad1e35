/**
 * weftd in Kubernetes mode on testbed hosts: each host is a Node of the testbed's API emulator
 * (`kubeApi`), weftd reads a kubeconfig and net-conf.json, and knows its node by NODE_NAME.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Testbed, TestHost } from './testbed.ts'
import { startWeftd, startWeftdReady, type ReadyWeftd, type WeftdRun } from './weftd.ts'
import type { KubeconfigOptions } from './kube-apiserver.ts'

export interface KubeWeftdOptions {
  /** Kubeconfig to use (default: the flannel service account's token in a token file). */
  kubeconfig?: string
  extra?: readonly string[]
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
}

/** Writes net-conf.json into the testbed's work dir; returns its path. */
export function writeNetConf(bed: Testbed, conf: object, name = 'net-conf.json'): string {
  const path = join(bed.workDir, name)
  writeFileSync(path, JSON.stringify(conf))
  return path
}

export function kubeconfigFor(bed: Testbed, opts: KubeconfigOptions = { tokenFile: true }): string {
  if (!bed.kubeApi) throw new Error('the testbed was created without kubeApi')
  return bed.kubeApi.kubeconfig(opts)
}

/**
 * Registers every host as a Node the way a kubelet does (labels, its two annotations, the
 * InternalIP); podCIDRs come from the emulator's IPAM when enabled. flanneld v0.20.2 panics on a
 * node with no annotation at all ("assignment to entry in nil map"), which no kubelet-registered
 * node is.
 */
export async function registerNodes(bed: Testbed, hosts: readonly TestHost[] = bed.hosts): Promise<void> {
  if (!bed.kubeApi) throw new Error('the testbed was created without kubeApi')
  await bed.kubeApi.admin.createNodes(hosts.map((h) => ({
    name: h.name,
    labels: { 'kubernetes.io/hostname': h.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
    annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true', 'node.alpha.kubernetes.io/ttl': '0' },
    addresses: [{ type: 'InternalIP', address: h.underlayIp }, { type: 'Hostname', address: h.name }],
  })))
}

function kubeArgs(bed: Testbed, netConf: string, opts: KubeWeftdOptions): string[] {
  return ['--kube-subnet-mgr', `--kubeconfig-file=${opts.kubeconfig ?? kubeconfigFor(bed)}`, `--net-config-path=${netConf}`, ...(opts.extra ?? [])]
}

const envFor = (host: TestHost, opts: KubeWeftdOptions): NodeJS.ProcessEnv => ({ ...process.env, NODE_NAME: host.name, ...opts.env })

export function startKubeWeftd(bed: Testbed, host: TestHost, netConf: string, opts: KubeWeftdOptions = {}): WeftdRun {
  return startWeftd(bed, host, kubeArgs(bed, netConf, opts), { env: envFor(host, opts) })
}

export function startKubeWeftdReady(bed: Testbed, host: TestHost, netConf: string, opts: KubeWeftdOptions = {}): Promise<ReadyWeftd> {
  return startWeftdReady(bed, host, kubeArgs(bed, netConf, opts), { env: envFor(host, opts), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) })
}

export function startKubeCluster(bed: Testbed, netConf: string, opts: KubeWeftdOptions = {}, hosts: readonly TestHost[] = bed.hosts): Promise<ReadyWeftd[]> {
  return Promise.all(hosts.map((h) => startKubeWeftdReady(bed, h, netConf, opts)))
}
