/**
 * The peer table behind RouteNetwork: what is programmed for every remote lease, and the
 * operations that change it. One ordered list of kernel entries per peer (host-gw: a route;
 * vxlan: neighbour → FDB → route, or a direct route):
 *
 * - wrong leases are refused before they reach the kernel (lease-validation.ts), each reason
 *   logged once, and re-evaluated when peers leave (an overlap may have gone);
 * - peers are applied concurrently, each in its own order (apply.ts), so LinuxKernel can batch
 *   the requests of one tick: thousands of peers program in well under a second;
 * - per-peer records of what was installed make removal delete exactly that.
 *
 * Not re-entrant: RouteNetwork calls it from one serial queue.
 */
import type { Family, IpNet } from '../ip/ip.ts'
import type { Kernel } from '../kernel/kernel.ts'
import type { Lease, LeaseWatchResult } from '../lease/lease.ts'
import type { Logger } from '../log/logger.ts'
import { ApplyFailure, applyOrdered, computeKey, describeEntry, entryKey, entryMatches, removeAll, removeEntry, type KernelEntry } from '../kernel/apply.ts'
import { errorMessage } from '../errors.ts'
import type { BackendRecorder } from '../metrics/recorder.ts'
import { checkLease, describeLease, leaseFamilies, leaseKey, sameLease, subnetOf, SubnetIndex, type LeaseCheckContext } from './lease-validation.ts'

/** A plan for one peer, or the reason it must not be programmed. */
export type PeerPlan =
  | { readonly ok: true; readonly entries: readonly KernelEntry[] }
  | { readonly ok: false; readonly reason: string }

/** What a backend contributes to reconciliation. */
export interface PeerHooks {
  /** Maps a validated lease to its ordered entries; may ask the kernel (routeGet). */
  plan(lease: Lease): Promise<PeerPlan>
  /**
   * Makes sure the backend's devices exist and are up; true when one was (re)created, which
   * replays every peer. Called when one of them is deleted or set down, and before each check.
   */
  ensureDevices?(): Promise<boolean>
  /**
   * Turns a kernel refusal that is the lease's fault (host-gw: gateway not on-link) into a
   * refusal reason: the peer is dropped, the reason logged once, and retried by the check.
   */
  explainFailure?(failure: ApplyFailure): string | undefined
  /** Device indexes whose neighbours / FDB entries the periodic check lists. */
  deviceIndexes?(): readonly number[]
  /**
   * Entries of kinds the kernel has no notifications for (WireGuard peers), listed by the
   * periodic check so that one changed or deleted by hand is repaired there.
   */
  listEntries?(): Promise<readonly KernelEntry[]>
}

type PeerState = 'ok' | 'failed' | 'applying'

/**
 * A lease not programmed. `ignored`: another backend's, never retried. `byCheck`: refused by
 * validation (an overlap may clear when a peer leaves); otherwise refused by the plan or the
 * kernel (not on-link), retried by the periodic check only.
 */
interface Refusal {
  lease: Lease
  reason: string
  ignored: boolean
  byCheck: boolean
}

interface Peer {
  lease: Lease
  entries: readonly KernelEntry[]
  /** entryKey of each of `entries`, same order. */
  keys: readonly string[]
  installed: readonly KernelEntry[]
  state: PeerState
}

/** Batches with more leases than this log one summary line instead of one line per subnet. */
const QUIET_BATCH = 100

const subnetsOf = (lease: Lease, families: readonly Family[]): IpNet[] => leaseFamilies(lease, families).map((f) => subnetOf(lease, f) as IpNet)

/** The peers of one network and the operations that change them (see the header). */
export class PeerReconciler {
  private readonly peers = new Map<string, Peer>()
  /** Entry key to peer key, to map a kernel notification to its peer. */
  private readonly owners = new Map<string, string>()
  private readonly accepted = new SubnetIndex()
  /** Refused (or ignored) leases by key, with the reason last logged. */
  private readonly refused = new Map<string, Refusal>()
  /** Last refusal reason logged per key, so a reason is logged once until the lease is accepted or gone. */
  private readonly reported = new Map<string, string>()
  /** Entries of removed peers whose deletion failed, by entry key. */
  private readonly orphans = new Map<string, KernelEntry>()
  /** Per-pass budget of per-peer error lines, so 5,000 failing peers do not flood the log. */
  private failureLogs = 0

  constructor(
    private readonly kernel: Kernel,
    private readonly log: Logger,
    private readonly options: LeaseCheckContext,
    private readonly hooks: PeerHooks,
    private readonly metrics?: BackendRecorder,
  ) {}

  /** Peers programmed now (weft_peers). */
  get peerCount(): number {
    let n = 0
    for (const peer of this.peers.values()) if (peer.state === 'ok') n++
    return n
  }

  /** Keys of programmed peers (tests, diagnostics). */
  get peerKeys(): string[] {
    return [...this.peers.keys()]
  }

  /**
   * Maps a route/neighbour/FDB notification to the settled peer owning that entry, and whether
   * the entry is now wrong (deleted, or changed to something else).
   */
  classify(actual: KernelEntry, action: 'new' | 'del'): { readonly key: string; readonly peer: string; readonly bad: boolean } | undefined {
    const key = computeKey(actual)
    const owner = this.owners.get(key)
    const peer = owner === undefined ? undefined : this.peers.get(owner)
    // Only settled peers: a failed one waits for the periodic retry, so a rollback's own
    // deletions cannot start a loop.
    if (owner === undefined || !peer || peer.state !== 'ok') return undefined
    const desired = peer.entries[peer.keys.indexOf(key)]
    if (!desired) return undefined
    return { key, peer: owner, bad: action === 'del' || !entryMatches(desired, actual) }
  }

  /** Resets the per-pass budget of per-peer error lines. */
  newPass(): void {
    this.failureLogs = 0
  }

  /** Re-applies settled peers whose entries someone changed (keys from `classify`). */
  async reassert(keys: ReadonlySet<string>): Promise<void> {
    const peers = [...keys].map((k) => [k, this.peers.get(k)] as const).filter((p): p is readonly [string, Peer] => p[1]?.state === 'ok')
    if (peers.length > 0) this.log.info('re-asserting peer state changed by someone else', { peers: peers.length })
    await Promise.all(peers.map(([key, peer]) => this.install(key, peer, peer.entries)))
  }

  /** Applies one watch result: a snapshot converges, events apply in order. */
  handle(result: LeaseWatchResult): Promise<void> {
    return result.kind === 'snapshot' ? this.converge(result.leases) : this.applyEvents(result)
  }

  private async converge(leases: readonly Lease[]): Promise<void> {
    const present = new Set<string>()
    for (const lease of leases) {
      const key = leaseKey(lease, this.options.families)
      if (key !== undefined) present.add(key)
    }
    const gone = [...this.peers.values()].filter((p) => !present.has(leaseKey(p.lease, this.options.families) as string))
    for (const key of this.refused.keys()) if (!present.has(key)) this.refused.delete(key)
    for (const key of this.reported.keys()) if (!present.has(key)) this.reported.delete(key)
    await this.removePeers(gone.map((p) => p.lease))
    await this.upsert(leases)
  }

  private async applyEvents(result: Extract<LeaseWatchResult, { kind: 'events' }>): Promise<void> {
    // Keep event order: consecutive runs of one type are applied together, concurrently.
    let run: Lease[] = []
    let type: 'added' | 'removed' | undefined
    const flush = async (): Promise<void> => {
      if (type === 'added') await this.upsert(run)
      else if (type === 'removed') await this.removePeers(run)
      run = []
    }
    for (const event of result.events) {
      if (event.type !== type) {
        await flush()
        type = event.type
      }
      run.push(event.lease)
    }
    await flush()
  }

  /** Validates leases in order (each accepted one joins the overlap index), then programs them concurrently. */
  private async upsert(leases: readonly Lease[]): Promise<void> {
    const work: Promise<void>[] = []
    // A large snapshot is summed up in one line (each subnet at debug), as flanneld logs each
    // subnet only at -v=2: thousands of lines would cost more than programming them.
    const quiet = leases.length > QUIET_BATCH
    const before = this.peers.size
    // Two versions of one lease in a batch: the later one wins (one apply per peer at a time).
    const latest = new Map<string, Lease>()
    for (const lease of leases) latest.set(leaseKey(lease, this.options.families) ?? describeLease(lease), lease)
    for (const lease of latest.values()) {
      const key = leaseKey(lease, this.options.families)
      const existing = key === undefined ? undefined : this.peers.get(key)
      if (existing && existing.state === 'ok' && sameLease(existing.lease, lease)) continue
      if (key !== undefined) this.unindex(key)
      const verdict = checkLease(this.options, lease, this.accepted)
      if (!verdict.ok) {
        work.push(this.refuse(key ?? describeLease(lease), lease, verdict.reason, verdict.ignored, true))
        continue
      }
      // This version supersedes any refused one: never retry the old lease over it.
      this.refused.delete(key as string)
      for (const net of subnetsOf(lease, this.options.families)) this.accepted.add(net, key as string)
      work.push(this.program(key as string, lease, quiet))
    }
    const added = this.peers.size - before
    await Promise.all(work)
    if (quiet && added > 0) this.log.info('subnets added', { count: added, peers: this.peers.size })
  }

  private async program(key: string, lease: Lease, quiet = false): Promise<void> {
    const plan = await this.hooks.plan(lease).catch((err: unknown): PeerPlan => ({ ok: false, reason: `planning failed: ${errorMessage(err)}` }))
    if (!plan.ok) {
      for (const net of subnetsOf(lease, this.options.families)) this.accepted.delete(net, key)
      return this.refuse(key, lease, plan.reason, false)
    }
    const peer = this.peers.get(key) ?? { lease, entries: [], keys: [], installed: [], state: 'applying' as PeerState }
    if (!this.peers.has(key)) {
      this.peers.set(key, peer)
      if (quiet) this.log.debug('subnet added', { lease: describeLease(lease) })
      else this.log.info('subnet added', { lease: describeLease(lease) })
    }
    peer.lease = lease
    await this.install(key, peer, plan.entries)
  }

  /** Moves a peer to `entries`, keeping the owner index and record exact. */
  private async install(key: string, peer: Peer, entries: readonly KernelEntry[]): Promise<void> {
    for (const k of peer.keys) if (this.owners.get(k) === key) this.owners.delete(k)
    peer.entries = entries
    peer.keys = entries.map(entryKey)
    for (const k of peer.keys) this.owners.set(k, key)
    peer.state = 'applying'
    try {
      const result = await applyOrdered(this.kernel, peer.installed, entries, (k) => this.isShared(k, key))
      peer.installed = result.installed
      peer.state = 'ok'
      if (this.reported.delete(key)) this.log.info('lease accepted', { lease: describeLease(peer.lease) })
      for (const err of result.errors) this.log.warn('failed to delete a stale entry', { peer: key }, err)
    } catch (err) {
      peer.installed = err instanceof ApplyFailure ? err.installed : peer.installed
      peer.state = 'failed'
      const reason = err instanceof ApplyFailure ? this.hooks.explainFailure?.(err) : undefined
      if (reason !== undefined) return this.refuse(key, peer.lease, reason, false)
      if (this.failureLogs++ < 10) this.log.error('failed to program peer; will retry', { peer: key, reason: reasonOf(err) }, err)
      else if (this.failureLogs === 12) this.log.error('more peers failed to program; further failures in this pass not logged')
    }
  }

  private isShared(entry: string, except: string): boolean {
    const owner = this.owners.get(entry)
    return owner !== undefined && owner !== except
  }

  private async refuse(key: string, lease: Lease, reason: string, ignored: boolean, byCheck = false): Promise<void> {
    this.refused.set(key, { lease, reason, ignored, byCheck })
    if (this.reported.get(key) !== reason) {
      this.reported.set(key, reason)
      const fields = { lease: describeLease(lease), reason }
      if (ignored) this.log.warn(`ignoring non-${this.options.backendType} subnet`, fields)
      else this.log.warn('refusing lease', fields)
    }
    // A lease that turned bad must not stay programmed.
    const peer = this.peers.get(key)
    if (peer) await this.dropPeer(key, peer)
  }

  private unindex(key: string): void {
    const peer = this.peers.get(key)
    if (peer) for (const net of subnetsOf(peer.lease, this.options.families)) this.accepted.delete(net, key)
  }

  private async removePeers(leases: readonly Lease[]): Promise<void> {
    const work: Promise<void>[] = []
    for (const lease of leases) {
      const key = leaseKey(lease, this.options.families)
      if (key === undefined) continue
      this.refused.delete(key)
      this.reported.delete(key)
      const peer = this.peers.get(key)
      if (!peer) continue
      this.log.info('subnet removed', { lease: describeLease(peer.lease) })
      work.push(this.dropPeer(key, peer))
    }
    await Promise.all(work)
    // A removal may have freed a subnet another lease overlapped.
    if (work.length > 0) await this.retryRefused(true)
  }

  private async dropPeer(key: string, peer: Peer): Promise<void> {
    this.unindex(key)
    this.peers.delete(key)
    for (const k of peer.keys) if (this.owners.get(k) === key) this.owners.delete(k)
    const shared = (e: KernelEntry): boolean => this.owners.has(entryKey(e))
    const result = await removeAll(this.kernel, peer.installed.filter((e) => !shared(e)))
    for (const err of result.errors) this.log.error('failed to delete an entry of a removed peer; will retry', { peer: key }, err)
    // Nobody owns these any more: the periodic check keeps deleting them until they are gone.
    for (const e of result.left) this.orphans.set(entryKey(e), e)
  }

  /**
   * Deletes leftovers of removed peers, unless a peer has since installed the same object. A
   * delete names the old gateway/MAC, so it cannot remove a newer version of the object.
   */
  private async deleteOrphans(): Promise<void> {
    const work = [...this.orphans].map(async ([key, entry]) => {
      // Replaced by a peer that installed the same object since: not an orphan any more.
      const owner = this.owners.get(key)
      const peer = owner === undefined ? undefined : this.peers.get(owner)
      if (peer?.installed.some((e) => entryKey(e) === key)) return void this.orphans.delete(key)
      try {
        await removeEntry(this.kernel, entry)
        this.orphans.delete(key)
      } catch (err) {
        this.log.warn('failed to delete an entry of a removed peer; will retry', { entry: describeEntry(entry) }, err)
      }
    })
    await Promise.all(work)
  }

  private async retryRefused(onlyChecked = false): Promise<void> {
    const retry = [...this.refused.values()].filter((r) => !r.ignored && (r.byCheck || !onlyChecked)).map((r) => r.lease)
    if (retry.length > 0) await this.upsert(retry)
  }

  /**
   * Lets the backend recreate its devices; when one was recreated every peer is replayed.
   * Rejects when the backend cannot (the caller retries with backoff).
   */
  async ensureDevices(): Promise<void> {
    if (!this.hooks.ensureDevices) return
    const recreated = await this.hooks.ensureDevices()
    if (!recreated) return
    this.metrics?.kernelRepairs('link', 1)
    this.log.info('device recreated; replaying every peer', { peers: this.peers.size })
    const peers = [...this.peers.values()]
    await this.upsertForced(peers.map((p) => p.lease))
  }

  /** Re-plans and re-applies leases even when unchanged (device index may have changed). */
  private async upsertForced(leases: readonly Lease[]): Promise<void> {
    for (const lease of leases) {
      const peer = this.peers.get(leaseKey(lease, this.options.families) as string)
      if (peer) peer.state = 'failed'
    }
    await this.upsert(leases)
  }

  /** The periodic safety net: every peer's entries against kernel listings; retries refusals. */
  async fullCheck(): Promise<void> {
    await this.deleteOrphans()
    const intact = await this.intactKeys()
    const stale: Peer[] = []
    for (const peer of this.peers.values()) {
      if (peer.state !== 'ok') stale.push(peer)
      // Missing or changed entries, or stale ones whose deletion failed (still in the record).
      else if (peer.installed.length !== peer.entries.length || peer.keys.some((k) => !intact.has(k))) {
        stale.push(peer)
        for (const k of peer.keys) if (!intact.has(k)) this.metrics?.kernelRepairs(k.slice(0, k.indexOf('|')), 1)
      }
    }
    if (stale.length > 0) this.log.info('route check: re-programming peers', { peers: stale.length })
    await this.upsertForced(stale.map((p) => p.lease))
    await this.retryRefused()
  }

  /**
   * Keys of the settled peers' entries that the kernel listings hold unchanged. Each listed
   * object is judged as it comes (as a notification is) and then dropped: with 5,000 peers, a
   * table of 15,000 listed objects outlived the young generation and grew the heap by ~16 MB
   * every check.
   */
  private async intactKeys(): Promise<Set<string>> {
    const { kernel } = this
    const out = new Set<string>()
    const add = (actual: KernelEntry): void => {
      const verdict = this.classify(actual, 'new')
      if (verdict && !verdict.bad) out.add(verdict.key)
    }
    for (const family of this.options.families) {
      for (const route of await kernel.listRoutes({ family })) add({ kind: 'route', route })
      for (const index of this.hooks.deviceIndexes?.() ?? []) {
        for (const neigh of await kernel.listNeighs(family, index)) add({ kind: 'neigh', neigh })
      }
    }
    for (const index of this.hooks.deviceIndexes?.() ?? []) {
      for (const fdb of await kernel.listFdb(index)) add({ kind: 'fdb', fdb })
    }
    for (const entry of (await this.hooks.listEntries?.()) ?? []) add(entry)
    return out
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof ApplyFailure) return `${err.message}: ${errorMessage(err.cause)}`
  return errorMessage(err)
}
