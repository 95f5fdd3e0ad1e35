/**
 * weft's metric families and the Recorder that feeds them. Names follow Prometheus practice:
 * the weft_ prefix, base units (seconds, bytes), _total on counters; labels come from small
 * fixed sets (never a peer, a subnet or an address), so the series count does not grow with
 * the cluster.
 */
import { Counter, Gauge, Histogram, Registry } from './exposition.ts'
import { registerProcessMetrics } from './process-metrics.ts'
import type { Outcome, Recorder, StoreKind, UdpCounterView } from './recorder.ts'

export interface BuildInfo {
  readonly version: string
  readonly backend: string
  readonly store: StoreKind
}

const STORE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const RECONCILE_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class WeftMetrics implements Recorder {
  readonly registry = new Registry()
  private readonly buildInfo = this.registry.register(new Gauge('weft_build_info', 'Always 1; the labels say the weft version, the backend and the subnet store.', ['version', 'backend', 'store']))
  private readonly leaseExpiry = this.registry.register(new Gauge('weft_lease_expiration_timestamp_seconds', "When this host's subnet lease expires, as a unix timestamp; absent for a reservation (no TTL)."))
  private readonly renewals = this.registry.register(new Counter('weft_lease_renewals_total', "Renewals of this host's lease, by result.", ['result']))
  private readonly peers = this.registry.register(new Gauge('weft_peers', 'Remote hosts whose subnets are programmed now.', ['backend']))
  private readonly reconcileSeconds = this.registry.register(new Histogram('weft_reconcile_duration_seconds', 'Time of one desired-state apply: a lease batch, a re-assert or a full check.', [], RECONCILE_BUCKETS))
  private readonly kernelOps = this.registry.register(new Counter('weft_kernel_operations_total', 'Kernel (netlink) operations, by object, operation and result.', ['object', 'op', 'result']))
  private readonly repairs = this.registry.register(new Counter('weft_kernel_repairs_total', 'Kernel objects restored after something else deleted or changed them.', ['object']))
  private readonly storeRequests = this.registry.register(new Counter('weft_store_requests_total', 'Requests to the subnet store (etcd or the Kubernetes API), by operation and result.', ['store', 'op', 'result']))
  private readonly storeSeconds = this.registry.register(new Histogram('weft_store_request_duration_seconds', 'Duration of requests to the subnet store; for watches, until the stream opened.', ['store', 'op'], STORE_BUCKETS))
  private readonly watchRestarts = this.registry.register(new Counter('weft_store_watch_restarts_total', 'Lease watches reopened, by reason (compacted, 410, error, ended).', ['store', 'reason']))
  private readonly udpPackets = this.registry.register(new Counter('weft_udp_packets_total', 'Packets carried by the udp backend, by direction (tx: TUN to UDP, rx: UDP to TUN).', ['direction']))
  private readonly udpDrops = this.registry.register(new Counter('weft_udp_dropped_packets_total', 'Packets the udp backend dropped, by reason.', ['reason']))
  private udpReaders: (() => UdpCounterView | undefined)[] = []

  constructor(info: BuildInfo, startTimeSeconds = Date.now() / 1000 - process.uptime()) {
    this.buildInfo.set([info.version, info.backend, info.store], 1)
    this.renewals.touch('ok')
    this.renewals.touch('error')
    this.reconcileSeconds.touch()
    this.registry.onCollect(() => this.collectUdp())
    registerProcessMetrics(this.registry, startTimeSeconds)
  }

  /** The backend is known once the network config is read; until then the label says "unknown". */
  setBackend(info: BuildInfo): void {
    this.buildInfo.remove([info.version, 'unknown', info.store])
    this.buildInfo.set([info.version, info.backend, info.store], 1)
  }

  render(): string {
    return this.registry.render()
  }

  /** Totals for `weft status` (GET /status): one number per family, errors apart. */
  summary(): Record<string, number> {
    this.collectUdp()
    const errors = (l: Readonly<Record<string, string>>): boolean => l.result === 'error'
    return {
      kernelOperations: this.kernelOps.total(),
      kernelOperationErrors: this.kernelOps.total(errors),
      kernelRepairs: this.repairs.total(),
      reconciles: this.reconcileSeconds.total(),
      storeRequests: this.storeRequests.total(),
      storeRequestErrors: this.storeRequests.total(errors),
      storeWatchRestarts: this.watchRestarts.total(),
      udpPackets: this.udpPackets.total(),
      udpDroppedPackets: this.udpDrops.total(),
    }
  }

  storeRequest(store: StoreKind, op: string, result: Outcome, seconds: number): void {
    this.storeRequests.inc([store, op, result])
    this.storeSeconds.observe([store, op], seconds)
  }
  watchRestart(store: StoreKind, reason: string): void {
    this.watchRestarts.inc([store, reason])
  }
  kernelOp(object: string, op: string, result: Outcome): void {
    this.kernelOps.inc([object, op, result])
  }
  reconcile(seconds: number): void {
    this.reconcileSeconds.observe([], seconds)
  }
  kernelRepairs(object: string, count: number): void {
    this.repairs.inc([object], count)
  }
  observePeers(backend: string, count: () => number): void {
    this.peers.observe([backend], count)
  }
  observeUdp(read: () => UdpCounterView | undefined): void {
    this.udpReaders.push(read)
    for (const d of ['tx', 'rx']) this.udpPackets.touch(d)
  }
  leaseRenewal(result: Outcome): void {
    this.renewals.inc([result])
  }
  leaseExpiration(epochMs: number | undefined): void {
    if (epochMs === undefined) this.leaseExpiry.remove([])
    else this.leaseExpiry.set([], epochMs / 1000)
  }

  private collectUdp(): void {
    let tx = 0
    let rx = 0
    const drops = new Map<string, number>()
    let any = false
    for (const read of this.udpReaders) {
      const c = read()
      if (!c) continue
      any = true
      tx += c.txPackets
      rx += c.rxPackets
      for (const [reason, n] of Object.entries(c.drops)) drops.set(reason, (drops.get(reason) ?? 0) + n)
    }
    if (!any) return
    this.udpPackets.set(['tx'], tx)
    this.udpPackets.set(['rx'], rx)
    for (const [reason, n] of drops) this.udpDrops.set([reason], n)
  }
}
