/**
 * The two etcd lease watches (flannel watchSubnets / WatchLease): snapshot first, then
 * events resumed from revision + 1; after compaction a fresh snapshot; after a dropped
 * connection a reconnect with backoff 100 ms → 5 s. Both end quietly when the signal aborts.
 */
import { isWeftError } from '../../errors.ts'
import type { Lease, LeaseEvent, LeaseWatchResult } from '../../lease/lease.ts'
import { LeaseWatcher } from '../../lease/lease-watcher.ts'
import type { Logger } from '../../log/logger.ts'
import type { Clock } from '../../util/clock.ts'
import { backoffDelay } from '../../util/abort.ts'
import type { StoreRecorder } from '../../metrics/recorder.ts'
import type { Registry, RegistryWatchBatch, SubnetRecord } from './registry.ts'
import { type GarbageReporter, changeToEvent, parseEntry } from './lease-entries.ts'

export interface WatchDeps {
  readonly registry: Registry
  readonly prefix: string
  readonly logger: Logger
  readonly clock: Clock
  readonly garbage: GarbageReporter
  readonly metrics?: StoreRecorder
}

const BACKOFF_BASE_MS = 100
const BACKOFF_MAX_MS = 5000

const next = (revision: string): string => String(BigInt(revision) + 1n)

/** Every lease except `own`: a snapshot, then event batches (removals carry the stored attrs). */
export async function* watchAllLeases(deps: WatchDeps, own: Lease | undefined, signal: AbortSignal): AsyncGenerator<LeaseWatchResult> {
  const { registry, prefix, logger, garbage } = deps
  const watcher = new LeaseWatcher(own)
  let from: string | undefined
  let failures = 0
  while (!signal.aborted) {
    try {
      if (from === undefined) {
        const listed = await listLeases(deps, signal)
        watcher.reset(listed.leases)
        from = next(listed.revision)
        failures = 0
        yield { kind: 'snapshot', leases: watcher.leases }
      }
      for await (const batch of registry.watchSubnets(prefix, from, signal)) {
        failures = 0
        from = next(batch.revision)
        const events = toEvents(batch, garbage)
        const diff = watcher.update(events)
        if (diff.length > 0) yield { kind: 'events', events: diff }
      }
      if (signal.aborted) return
      throw new Error('watch stream ended')
    } catch (err) {
      if (signal.aborted) return
      deps.metrics?.watchRestart('etcd', isWeftError(err, 'REGISTRY_COMPACTED') ? 'compacted' : 'error')
      if (isWeftError(err, 'REGISTRY_COMPACTED')) {
        logger.warn('watch revision compacted; re-listing leases', { from })
        from = undefined
        continue
      }
      const delay = backoffDelay(failures++, BACKOFF_BASE_MS, BACKOFF_MAX_MS)
      logger.warn('lease watch failed; reconnecting', { retryInMs: delay }, err)
      if (!(await pause(deps.clock, delay, signal))) return
    }
  }
}

/**
 * The leases of one listing. Its own function: a suspended generator keeps every local it ever
 * held alive, and the raw listing (5,000 keys and JSON values, ~2 MB) must not outlive parsing.
 */
async function listLeases(deps: WatchDeps, signal: AbortSignal): Promise<{ leases: Lease[]; revision: string }> {
  const listing = await deps.registry.listSubnets(deps.prefix, signal)
  return { leases: listing.entries.flatMap((e) => parseEntry(e, deps.garbage)?.lease ?? []), revision: listing.revision }
}

/**
 * Our own key: first a snapshot of [lease] (or [] when it is gone), then 'added' with the stored
 * attributes and expiration on every write (another writer's too: the keeper compares) and
 * 'removed' on delete, expiry, or a value that is not a lease. TTL is looked up only here.
 */
export async function* watchOwnLease(deps: WatchDeps, key: string, own: Lease, signal: AbortSignal): AsyncGenerator<LeaseWatchResult> {
  const { registry, prefix, logger } = deps
  let from: string | undefined
  let failures = 0
  let present = true
  while (!signal.aborted) {
    try {
      if (from === undefined) {
        const record = await registry.getSubnet(prefix, key, signal)
        const revision = record?.storeRevision ?? (await registry.listSubnets(prefix, signal)).revision
        from = next(revision)
        failures = 0
        const lease = record ? toOwnLease(deps, record) : undefined
        if (!lease && present) {
          present = false
          yield { kind: 'snapshot', leases: [] }
        } else if (lease) {
          present = true
          yield { kind: 'snapshot', leases: [lease] }
        }
      }
      for await (const batch of registry.watchSubnet(prefix, key, from, signal)) {
        failures = 0
        from = next(batch.revision)
        const events: LeaseEvent[] = []
        for (const change of batch.changes) {
          if (change.type === 'delete') {
            present = false
            events.push({ type: 'removed', lease: own })
            continue
          }
          // One TTL lookup per write of our own key (renewals: once a day).
          const record = await registry.getSubnet(prefix, key, signal)
          const lease = record ? toOwnLease(deps, record) : undefined
          present = lease !== undefined
          // Garbage over our key is no lease: to its readers, as good as deleted.
          events.push(lease ? { type: 'added', lease } : { type: 'removed', lease: own })
        }
        if (events.length > 0) yield { kind: 'events', events }
      }
      if (signal.aborted) return
      throw new Error('watch stream ended')
    } catch (err) {
      if (signal.aborted) return
      if (isWeftError(err, 'REGISTRY_COMPACTED')) {
        logger.warn('own lease watch revision compacted; re-reading the key', { key })
        from = undefined
        continue
      }
      const delay = backoffDelay(failures++, BACKOFF_BASE_MS, BACKOFF_MAX_MS)
      logger.warn('own lease watch failed; reconnecting', { retryInMs: delay }, err)
      if (!(await pause(deps.clock, delay, signal))) return
    }
  }
}

function toEvents(batch: RegistryWatchBatch, garbage: GarbageReporter): LeaseEvent[] {
  const events: LeaseEvent[] = []
  for (const change of batch.changes) {
    const event = changeToEvent(change, garbage)
    if (event) events.push(event)
  }
  return events
}

function toOwnLease(deps: WatchDeps, record: SubnetRecord): Lease | undefined {
  const expiration = record.ttlSeconds === undefined ? undefined : deps.clock.now() + record.ttlSeconds * 1000
  return parseEntry(record, deps.garbage, expiration)?.lease
}

/** Sleeps; false when aborted meanwhile. */
async function pause(clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await clock.sleep(ms, signal)
    return true
  } catch {
    return false
  }
}
