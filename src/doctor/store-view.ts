/**
 * The store as the doctor needs it: the network config and every host's lease, read with
 * weftd's flags (etcd via cli/store.ts, Kubernetes via cli/kube-store.ts's inputs). Read-only.
 */
import type { DaemonOptions } from '../daemon/options.ts'
import type { Logger } from '../log/logger.ts'
import type { NetworkConfig } from '../config/network-config.ts'
import type { Lease } from '../lease/lease.ts'
import { ConfigError } from '../errors.ts'
import { systemClock } from '../util/clock.ts'
import { backendRegistry } from '../backend/registry.ts'
import { parseNetworkConfig } from '../config/parse-network-config.ts'
import { EtcdSubnetManager } from '../subnet/etcd/etcd-subnet-manager.ts'
import { openEtcdRegistry } from '../cli/store.ts'
import { readNetConf } from '../cli/kube-store.ts'
import { annotationNames } from '../subnet/kube/annotations.ts'
import { createKubeApi } from '../subnet/kube/http-kube-api.ts'
import { isManagedNode, nodeToLease } from '../subnet/kube/node-lease.ts'
import { formatIp, type Family } from '../ip/ip.ts'

/** A lease and the name findings use for its host (node name, else its public IP). */
export interface NamedLease {
  readonly name: string
  readonly lease: Lease
}

export interface StoreView {
  readonly mode: 'etcd' | 'kube'
  readonly config: NetworkConfig
  readonly leases: readonly NamedLease[]
  /** Kube mode: this host's node (its name, podCIDR and lease when it has one). */
  readonly node?: { readonly name: string; readonly podCidr?: string; readonly lease?: Lease }
}

const parser = (mode: 'etcd' | 'kube') => (json: string): NetworkConfig => parseNetworkConfig(json, backendRegistry, { mode }).config

export async function readStore(options: DaemonOptions, env: NodeJS.ProcessEnv, logger: Logger, signal: AbortSignal): Promise<StoreView> {
  return options.kubeSubnetMgr ? readKube(options, env, signal) : readEtcd(options, logger, signal)
}

async function readEtcd(options: DaemonOptions, logger: Logger, signal: AbortSignal): Promise<StoreView> {
  const manager = new EtcdSubnetManager({ registry: openEtcdRegistry(options, logger), prefix: options.etcdPrefix, logger, clock: systemClock, parseConfig: parser('etcd') })
  try {
    const config = await manager.getNetworkConfig(signal)
    const leases = await manager.listLeases(signal, { withExpiration: true })
    return { mode: 'etcd', config, leases: leases.map((lease) => ({ name: lease.attrs.publicIP ? formatIp(lease.attrs.publicIP) : '?', lease })) }
  } finally {
    await manager.close().catch(() => {})
  }
}

async function readKube(options: DaemonOptions, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<StoreView> {
  const nodeName = env['NODE_NAME']
  if (!nodeName) throw new ConfigError('NODE_NAME', 'must name this host\'s Node for weft doctor in kube mode (the DaemonSet sets it from spec.nodeName)', { code: 'USAGE' })
  const config = await readNetConf(options.netConfigPath, parser('kube'))
  const names = annotationNames(options.kubeAnnotationPrefix)
  const { api } = createKubeApi({ kubeApiUrl: options.kubeApiUrl, kubeconfigFile: options.kubeconfigFile, env })
  try {
    const families: Family[] = [...(config.enableIPv4 ? [4 as const] : []), ...(config.enableIPv6 ? [6 as const] : [])]
    const items = []
    let cont: string | undefined
    do {
      const page = await api.listNodes({ limit: 500, ...(cont ? { continue: cont } : {}) }, signal)
      items.push(...page.items)
      cont = page.continue || undefined
    } while (cont)
    const leases: NamedLease[] = []
    let node: StoreView['node']
    for (const item of items) {
      const name = item.metadata.name ?? '?'
      const parsed = isManagedNode(item, names) ? nodeToLease(item, names, families) : undefined
      const lease = parsed?.ok ? parsed.lease : undefined
      if (lease) leases.push({ name, lease })
      if (name === nodeName) node = { name, ...(item.spec.podCIDR ? { podCidr: item.spec.podCIDR } : item.spec.podCIDRs?.[0] ? { podCidr: item.spec.podCIDRs[0] } : {}), ...(lease ? { lease } : {}) }
    }
    if (!node) throw new ConfigError('NODE_NAME', `names node "${nodeName}", which the API server does not have`, { code: 'USAGE' })
    return { mode: 'kube', config, leases, node }
  } finally {
    api.close()
  }
}
