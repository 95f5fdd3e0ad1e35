/**
 * The shared "one set of kernel entries per remote lease" network (flannel
 * pkg/backend/route_network.go, generalised): host-gw plans one route per lease, vxlan plans
 * neighbour → FDB → route. This file is the loop around the peer table (peer-reconciler.ts):
 *
 * - consumes the lease watch (restarting it with backoff; its first result, a snapshot,
 *   converges: peers not in it are removed);
 * - re-asserts entries someone deleted or changed, from kernel notifications (well within 1 s),
 *   and recreates devices someone deleted or set down;
 * - runs a full check on the clock (flannel: every 10 s, routes only) as a safety net.
 *
 * Every change runs through one serial queue, so a lease batch never interleaves with a
 * re-assert or a check.
 */
import { consumeLeaseWatch } from './consume-lease-watch.ts'
import type { Kernel, KernelEvent } from '../kernel/kernel.ts'
import type { LeaseEvent, LeaseWatchResult } from '../lease/lease.ts'
import type { Logger } from '../log/logger.ts'
import type { SubnetManager } from '../subnet/subnet-manager.ts'
import type { Clock } from '../util/clock.ts'
import type { BackendRecorder } from '../metrics/recorder.ts'
import type { KernelEntry } from '../kernel/apply.ts'
import { backoffDelay } from '../util/abort.ts'
import type { LeaseCheckContext } from './lease-validation.ts'
import { PeerReconciler, type PeerHooks, type PeerPlan } from './peer-reconciler.ts'

export type { PeerPlan }
/** What a backend plugs into the network (see PeerHooks). */
export type RouteNetworkHooks = PeerHooks

/** Injected parts (a subset of BackendDeps). */
export interface RouteNetworkDeps {
  readonly subnetManager: SubnetManager
  readonly kernel: Kernel
  readonly logger: Logger
  readonly clock: Clock
  readonly metrics?: BackendRecorder
}

export interface RouteNetworkOptions extends LeaseCheckContext {
  /** Full-check period; flannel's route check runs every 10 s. */
  readonly checkIntervalMs?: number
}

/** Runs the peer table against the lease watch, kernel notifications and the check timer. */
export class RouteNetwork {
  private readonly table: PeerReconciler
  /** Entry key to latest notification verdict, until the next flush. */
  private readonly pending = new Map<string, { peer: string; bad: boolean }>()
  private flushScheduled = false
  /** Watch results not yet taken by a drain. */
  private backlog: LeaseWatchResult[] = []
  private tail: Promise<void> = Promise.resolve()
  private signal: AbortSignal | undefined
  private deviceAttempt = 0
  private deviceRetry = false
  private readonly log: Logger

  constructor(
    private readonly deps: RouteNetworkDeps,
    private readonly options: RouteNetworkOptions,
    private readonly hooks: RouteNetworkHooks,
  ) {
    this.log = deps.logger
    this.table = new PeerReconciler(deps.kernel, deps.logger, options, hooks, deps.metrics)
    deps.metrics?.observePeers(options.backendType, () => this.table.peerCount)
  }

  /** Keys of programmed peers (tests, diagnostics). */
  get peerKeys(): string[] {
    return this.table.peerKeys
  }

  /** Runs until the signal aborts: lease watch, kernel notifications, periodic check. */
  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal
    const tasks = [this.consumeLeases(signal), this.watchKernel(signal), this.checkLoop(signal)]
    await Promise.allSettled(tasks)
    await this.tail
  }

  /** Applies one watch result (exposed for tests and benchmarks). */
  handle(result: LeaseWatchResult): Promise<void> {
    return this.enqueue(() => this.table.handle(result))
  }

  /** One full check now: devices, then every peer's entries against kernel listings. */
  check(): Promise<void> {
    return this.enqueue(async () => {
      if (await this.ensureDevices()) await this.table.fullCheck()
    })
  }

  /**
   * Queues a watch result without waiting for it: results that arrive while the table is busy
   * are merged into one batch (the kube manager delivers one event per result), so thousands of
   * peers still program concurrently.
   */
  private submit(result: LeaseWatchResult): void {
    this.backlog.push(result)
    if (this.backlog.length === 1) void this.enqueue(() => this.drain())
  }

  private async drain(): Promise<void> {
    const results = this.backlog
    this.backlog = []
    for (const merged of mergeResults(results)) await this.table.handle(merged)
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.tail
      .then(() => {
        // Nothing touches the kernel after run() was stopped (the daemon may close it).
        if (this.signal?.aborted) return
        this.table.newPass()
        const metrics = this.deps.metrics
        if (!metrics) return task()
        const started = performance.now()
        return task().finally(() => metrics.reconcile((performance.now() - started) / 1000))
      })
      .catch((err: unknown) => this.log.error('peer reconciliation failed', {}, err))
    this.tail = next
    return next
  }

  private consumeLeases(signal: AbortSignal): Promise<void> {
    return consumeLeaseWatch({ subnetManager: this.deps.subnetManager, clock: this.deps.clock, log: this.log }, this.options.own, (r) => this.submit(r), signal)
  }

  private async watchKernel(signal: AbortSignal): Promise<void> {
    try {
      await this.deps.kernel.subscribe(['route', 'neigh', 'fdb', 'link'], (event) => this.onKernelEvent(event), signal)
    } catch (err) {
      if (signal.aborted) return
      this.log.warn('kernel notifications unavailable; relying on the periodic check', {}, err)
    }
  }

  private async checkLoop(signal: AbortSignal): Promise<void> {
    const interval = this.options.checkIntervalMs ?? 10_000
    while (!signal.aborted) {
      try {
        await this.deps.clock.sleep(interval, signal)
      } catch {
        return
      }
      await this.check()
    }
  }

  private onKernelEvent(event: KernelEvent): void {
    if (event.kind === 'addr') return
    if (event.kind === 'link') {
      // Only our own devices: pods' veths come and go all the time.
      const ours = this.hooks.deviceIndexes?.().includes(event.link.index) ?? false
      // Any change (deleted, set down, MAC rewritten): the backend's hook tells what needs repair.
      if (ours) void this.enqueue(async () => void (await this.ensureDevices()))
      return
    }
    const actual: KernelEntry =
      event.kind === 'route' ? { kind: 'route', route: event.route } : event.kind === 'neigh' ? { kind: 'neigh', neigh: event.neigh } : { kind: 'fdb', fdb: event.fdb }
    const verdict = this.table.classify(actual, event.action)
    if (!verdict) return
    // Last event per entry wins: a replace may be notified as del + new (MemoryKernel does).
    this.pending.set(verdict.key, { peer: verdict.peer, bad: verdict.bad })
    if (this.flushScheduled) return
    this.flushScheduled = true
    // Coalesce a burst (e.g. `ip route flush`) into one pass.
    setImmediate(() => {
      this.flushScheduled = false
      const dirty = new Set<string>()
      for (const [key, p] of this.pending) {
        if (!p.bad) continue
        dirty.add(p.peer)
        // The entry key starts with its kind (route|, neigh|, fdb|).
        this.deps.metrics?.kernelRepairs(key.slice(0, key.indexOf('|')), 1)
      }
      this.pending.clear()
      if (dirty.size === 0) return
      void this.enqueue(async () => {
        // Entries vanish with their device: recreate it first (which replays every peer).
        if (await this.ensureDevices()) await this.table.reassert(dirty)
      })
    })
  }

  /** Lets the backend recreate its devices; false (and a retry with backoff, 1 s to 30 s as flannel) when it cannot. */
  private async ensureDevices(): Promise<boolean> {
    try {
      await this.table.ensureDevices()
      this.deviceAttempt = 0
      return true
    } catch (err) {
      const delay = backoffDelay(this.deviceAttempt++, 1000, 30_000)
      this.log.error('failed to ensure devices; retrying', { retryInMs: delay }, err)
      const signal = this.signal
      if (signal && !signal.aborted && !this.deviceRetry) {
        this.deviceRetry = true
        this.deps.clock.sleep(delay, signal).then(
          () => { this.deviceRetry = false; void this.enqueue(async () => void (await this.ensureDevices())) },
          () => { this.deviceRetry = false },
        )
      }
      return false
    }
  }
}

/** A snapshot supersedes everything before it; consecutive event batches become one. */
export function mergeResults(results: readonly LeaseWatchResult[]): LeaseWatchResult[] {
  let start = 0
  for (let i = results.length - 1; i >= 0; i--) {
    if (results[i]?.kind === 'snapshot') {
      start = i
      break
    }
  }
  const out: LeaseWatchResult[] = []
  const events: LeaseEvent[] = []
  for (const r of results.slice(start)) {
    if (r.kind === 'snapshot') out.push(r)
    else events.push(...r.events)
  }
  if (events.length > 0) out.push({ kind: 'events', events })
  return out
}

