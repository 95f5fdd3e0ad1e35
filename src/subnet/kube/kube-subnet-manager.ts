/**
 * SubnetManager over the Kubernetes API (flannel pkg/subnet/kube): the lease is the node's
 * podCIDR(s), this host's attributes are written as node annotations, and peers come from a
 * list + watch of all nodes. Improvements over flanneld: a node without a podCIDR is waited
 * for (with the fix in the log and on /readyz) instead of a CrashLoop; annotations are patched
 * only when they differ; a 410 re-lists and diffs instead of relying on a 5-minute resync.
 */
import { WeftError, isWeftError } from '../../errors.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import { type Family, type IpAddr, formatCidr } from '../../ip/ip.ts'
import type { Lease, LeaseAttrs, LeaseWatchResult } from '../../lease/lease.ts'
import type { Logger } from '../../log/logger.ts'
import type { Clock } from '../../util/clock.ts'
import { untilAborted, whenAborted } from '../../util/abort.ts'
import type { SubnetManager } from '../subnet-manager.ts'
import type { AnnotationNames } from './annotations.ts'
import type { KubeApi } from './kube-api.ts'
import type { KubeNode } from './kube-types.ts'
import { annotationChanges, checkOwnCidrs, nodePodCidrs, parseJsonAnnotation, storedPublicIps } from './node-lease.ts'
import { NodePeers } from './node-peers.ts'
import { type FullList, listAllNodes, watchNodeLeases } from './node-watch.ts'
import { networkUnavailableCondition, conditionIsCurrent } from './node-condition.ts'
import { retryApi } from './retry-api.ts'
import type { StoreRecorder } from '../../metrics/recorder.ts'

export interface KubeSubnetManagerOptions {
  readonly api: KubeApi
  readonly nodeName: string
  readonly names: AnnotationNames
  /** net-conf.json, read and validated before the manager is made. */
  readonly config: NetworkConfig
  readonly logger: Logger
  readonly clock: Clock
  /** --set-node-network-unavailable (default true). */
  readonly setNodeNetworkUnavailable: boolean
  /** Why the node cannot be ready yet (undefined once it can), for /readyz. */
  readonly onWaiting?: (reason: string | undefined) => void
  /** How often the wait for a podCIDR logs, and looks again with a GET (default 5 s). */
  readonly podCidrLogMs?: number
  /** Counts watch restarts (weft_store_watch_restarts_total); absent when metrics are off. */
  readonly metrics?: StoreRecorder
}

/** A prefetched own-node GET older than this is made again (its annotations may have moved). */
const EARLY_NODE_MAX_AGE_MS = 2000
/** Backends that take a dual-stack lease in kube mode (flannel: the rest get IPv4 only). */
const DUAL_STACK_BACKENDS = new Set(['vxlan', 'host-gw', 'wireguard'])

export class KubeSubnetManager implements SubnetManager {
  readonly name = 'kube'
  private readonly api: KubeApi
  private readonly logger: Logger
  private readonly clock: Clock
  private early: { at: number; node?: Promise<KubeNode | undefined>; list?: Promise<FullList | undefined> } | undefined
  private ownNode: KubeNode | undefined
  private ownNodeAt = -Infinity
  private localIps: { v4?: IpAddr; v6?: IpAddr } = {}

  constructor(private readonly options: KubeSubnetManagerOptions) {
    this.api = options.api
    this.logger = options.logger.child({ component: 'subnet/kube' })
    this.clock = options.clock
  }

  /**
   * Sends start-up's requests at once (own node, and the node list unless the backend is alloc,
   * which needs no peers): they overlap loading the netlink layer. A prefetched list is always
   * safe to use, since the watch resumes from its resourceVersion and replays what changed since.
   */
  prefetch(signal: AbortSignal): void {
    if (this.early) return
    const orUndefined = <T>(p: Promise<T>): Promise<T | undefined> => p.catch(() => undefined)
    const wantsPeers = this.options.config.backend.type !== 'alloc'
    this.early = {
      at: this.clock.now(),
      node: orUndefined(this.api.getNode(this.options.nodeName, signal)),
      ...(wantsPeers ? { list: orUndefined(listAllNodes(this.api, 500, signal)) } : {}),
    }
  }

  /**
   * The own node, waiting while it is not registered yet; 401/403 are fatal at once. A copy
   * younger than EARLY_NODE_MAX_AGE_MS (the prefetch, or the previous call's) is reused.
   */
  async getOwnNode(signal: AbortSignal): Promise<KubeNode> {
    const now = this.clock.now()
    if (this.ownNode && now - this.ownNodeAt <= EARLY_NODE_MAX_AGE_MS) return this.ownNode
    const early = this.early
    const prefetched = early?.node && now - early.at <= EARLY_NODE_MAX_AGE_MS ? early.node : undefined
    if (early) early.node = undefined
    const { nodeName } = this.options
    const node = (await prefetched) ?? (await retryApi(() => this.api.getNode(nodeName, signal), {
      what: `GET node "${nodeName}"`, logger: this.logger, clock: this.clock, signal,
      waitingFor: (err) => isWeftError(err, 'REGISTRY_NOT_FOUND') ? `node "${nodeName}" is not registered yet (NODE_NAME must name this host's Node object)` : undefined,
    }))
    this.setOwnNode(node)
    return node
  }

  private setOwnNode(node: KubeNode): void {
    this.ownNode = node
    this.ownNodeAt = this.clock.now()
  }

  /** The node-public-ip[v6] annotations, which override --public-ip[v6] (flannel's GetStoredPublicIP). */
  async storedPublicIps(signal: AbortSignal): Promise<{ v4?: IpAddr; v6?: IpAddr }> {
    const stored = storedPublicIps(await this.getOwnNode(signal), this.options.names)
    for (const bad of stored.bad) this.logger.warn('ignoring node annotation', { node: this.options.nodeName, problem: bad })
    return { ...(stored.v4 ? { v4: stored.v4 } : {}), ...(stored.v6 ? { v6: stored.v6 } : {}) }
  }

  /** The addresses this host uses; lets vxlan find its previous VTEP MAC under public-ip-overwrite. */
  setLocalAddresses(v4: IpAddr | undefined, v6: IpAddr | undefined): void {
    this.localIps = { ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}) }
  }

  async getNetworkConfig(): Promise<NetworkConfig> {
    return this.options.config
  }

  async acquireLease(config: NetworkConfig, attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
    const { nodeName, names } = this.options
    const node = await this.waitForPodCidr(signal)
    const cidrs = nodePodCidrs(node)
    if (!cidrs.ok) throw new WeftError('LEASE_INVALID', `node "${nodeName}": ${cidrs.reason}`)
    const dual = DUAL_STACK_BACKENDS.has(attrs.backendType)
    const networks = { ...(config.enableIPv4 && config.ipv4 ? { v4: config.ipv4.network } : {}), ...(config.enableIPv6 && dual && config.ipv6 ? { v6: config.ipv6.network } : {}) }
    const misfit = checkOwnCidrs(nodeName, cidrs, networks)
    if (misfit) throw new WeftError('CONFIG_INVALID', misfit)
    const changes = annotationChanges(node, attrs, names)
    if (Object.keys(changes).length > 0) {
      const patch = { metadata: { annotations: changes } }
      this.setOwnNode(await retryApi(() => this.api.patchNodeStatus(nodeName, patch, 'strategic', signal), { what: `PATCH node "${nodeName}" status (annotations)`, logger: this.logger, clock: this.clock, signal }))
      this.logger.info('node annotations written', { node: nodeName, keys: Object.keys(changes).join(',') })
    }
    return {
      ...(networks.v4 ? { subnet: cidrs.v4 } : {}),
      ...(networks.v6 ? { ipv6Subnet: cidrs.v6 } : {}),
      attrs,
      // A podCIDR is the node's for its lifetime: nothing to renew (flannel fakes 24 h).
    }
  }

  async renewLease(lease: Lease): Promise<Lease> {
    return lease
  }

  /** Only our own node's stored lease (vxlan reads its previous VTEP MAC from it). */
  async listLeases(signal: AbortSignal): Promise<Lease[]> {
    const node = this.ownNode ?? (await this.getOwnNode(signal))
    const ann = node.metadata.annotations ?? {}
    const { names } = this.options
    // Unparsable data is no previous MAC: vxlan then picks a new one.
    const parse = (text: string | undefined): unknown => { const r = parseJsonAnnotation(text); return r.ok ? r.value : undefined }
    const v4 = parse(ann[names.backendData])
    const v6 = parse(ann[names.backendV6Data])
    return [{
      attrs: {
        backendType: ann[names.backendType] ?? '',
        ...(this.localIps.v4 ? { publicIP: this.localIps.v4 } : {}),
        ...(this.localIps.v6 ? { publicIPv6: this.localIps.v6 } : {}),
        ...(v4 !== undefined ? { backendData: v4 } : {}),
        ...(v6 !== undefined ? { backendV6Data: v6 } : {}),
      },
    }]
  }

  watchLeases(own: Lease | undefined, signal: AbortSignal): AsyncIterable<LeaseWatchResult> {
    const families: Family[] = [...(own?.subnet ? [4 as const] : []), ...(own?.ipv6Subnet ? [6 as const] : [])]
    const peers = new NodePeers({
      names: this.options.names,
      families: families.length > 0 ? families : [4],
      ownNode: this.options.nodeName,
      onBadNode: (node, reason) => this.logger.warn('skipping node with unusable flannel data', { node, reason }),
    })
    let early = this.early?.list
    if (this.early) this.early.list = undefined
    // One-shot: the watch lives as long as the daemon, the listing must not.
    const initialList = (): Promise<FullList | undefined> | undefined => { const p = early; early = undefined; return p }
    return watchNodeLeases({ api: this.api, peers, logger: this.logger, clock: this.clock, initialList, ...(this.options.metrics ? { metrics: this.options.metrics } : {}) }, signal)
  }

  /** The podCIDR never moves and the node object outlives the daemon: nothing to watch. */
  async *watchLease(_own: Lease, signal: AbortSignal): AsyncIterable<LeaseWatchResult> {
    await untilAborted(signal)
  }

  /** flannel's CompleteLease: NetworkUnavailable=False, reason FlannelIsUp, unless disabled or already so. */
  async completeLease(_lease: Lease, signal: AbortSignal): Promise<void> {
    if (!this.options.setNodeNetworkUnavailable) return
    const { nodeName } = this.options
    const current = this.ownNode?.status?.conditions?.find((c) => c.type === 'NetworkUnavailable')
    if (current && conditionIsCurrent(current)) return
    const patch = { status: { conditions: [networkUnavailableCondition(new Date(this.clock.now()), current)] } }
    await retryApi(() => this.api.patchNodeStatus(nodeName, patch, 'strategic', signal), { what: `PATCH node "${nodeName}" status (NetworkUnavailable)`, logger: this.logger, clock: this.clock, signal, forever: true })
    this.logger.info('node condition set', { node: nodeName, NetworkUnavailable: 'False', reason: 'FlannelIsUp' })
  }

  async close(): Promise<void> {
    this.api.close()
  }

  /**
   * flannel exits on "pod cidr not assigned"; weft waits, says how to fix it, and starts once it
   * is set: a watch on its own node sees the podCIDR the moment the IPAM controller writes it.
   */
  private async waitForPodCidr(signal: AbortSignal): Promise<KubeNode> {
    const { nodeName } = this.options
    const logMs = this.options.podCidrLogMs ?? 5000
    let node = await this.getOwnNode(signal)
    const since = this.clock.now()
    while (!node.spec.podCIDR && !node.spec.podCIDRs?.length) {
      const reason = `node "${nodeName}" has no podCIDR yet: run kube-controller-manager with --allocate-node-cidrs=true and --cluster-cidr=${this.describeNetwork()}, or set spec.podCIDR on the node`
      this.options.onWaiting?.(reason)
      this.logger.warn('waiting for a podCIDR', { node: nodeName, waitedSeconds: Math.round((this.clock.now() - since) / 1000), fix: reason })
      const changed = await this.nextOwnNodeChange(node.metadata.resourceVersion ?? '', logMs, signal)
      if (changed) this.setOwnNode(changed)
      else this.ownNode = undefined // look again with a GET: the watch may have failed
      node = changed ?? (await this.getOwnNode(signal))
    }
    this.options.onWaiting?.(undefined)
    return node
  }

  /** The own node's next change within `maxWaitMs`, or undefined (timeout or a failed watch). */
  private async nextOwnNodeChange(from: string, maxWaitMs: number, signal: AbortSignal): Promise<KubeNode | undefined> {
    const ac = new AbortController()
    const unlisten = whenAborted(signal, () => ac.abort(signal.reason))
    this.clock.sleep(maxWaitMs, ac.signal).then(() => ac.abort(), () => {})
    const { nodeName } = this.options
    try {
      const events = this.api.watchNodes(from, { fieldSelector: `metadata.name=${nodeName}`, timeoutSeconds: Math.ceil(maxWaitMs / 1000) + 1, allowWatchBookmarks: false }, ac.signal)
      for await (const event of events) {
        if ((event.type === 'ADDED' || event.type === 'MODIFIED') && event.object.metadata.name === nodeName) return event.object
      }
      return undefined
    } catch (err) {
      if (signal.aborted) throw signal.reason
      if (!ac.signal.aborted) this.logger.debug('own node watch failed', {}, err)
      await this.clock.sleep(Math.min(1000, maxWaitMs), signal)
      return undefined
    } finally {
      unlisten()
      ac.abort()
    }
  }

  private describeNetwork(): string {
    const { config } = this.options
    const nets = [config.enableIPv4 ? config.ipv4?.network : undefined, config.enableIPv6 ? config.ipv6?.network : undefined]
    return nets.filter((n) => n !== undefined).map(formatCidr).join(',') || '<Network>'
  }
}
