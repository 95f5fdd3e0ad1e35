/**
 * In-memory Registry with etcd's semantics where the subnet manager depends on them:
 * revisions, TTL leases expiring on the injected Clock, reservations (keys without a lease),
 * create-if-absent, watches that replay history, and compaction. Fault hooks let tests
 * make the store unavailable, cut watches, or slip in a competing write.
 */
import { WeftError } from '../../errors.ts'
import type { Clock } from '../../util/clock.ts'
import {
  type ListedSubnet, type Registry, type RegistryChange, type RegistryEntry, type RegistryWatchBatch, type SubnetListing, type SubnetRecord,
  configKey, subnetsPrefix,
} from './registry.ts'

interface Stored {
  value: string
  leaseId: bigint
  modRevision: bigint
}

interface HistoryItem {
  revision: bigint
  type: 'put' | 'delete'
  key: string
  value?: string
  leaseId: bigint
}

export interface MemoryRegistryOptions {
  readonly clock: Clock
}

export class MemoryRegistry implements Registry {
  private readonly clock: Clock
  private readonly data = new Map<string, Stored>()
  private readonly leases = new Map<bigint, { expiresAt: number; keys: Set<string> }>()
  private history: HistoryItem[] = []
  private revision = 1n
  private compacted = 0n
  private nextLease = 1000n
  private wakers = new Set<() => void>()
  private watchGeneration = 0
  /** When true, every call rejects with REGISTRY_UNAVAILABLE and watches end with it. */
  unavailable = false
  /** Runs before a createSubnet transaction (lets a test win the race against us). */
  beforeCreate?: (fullKey: string) => void
  /** Number of calls per method, for assertions. */
  readonly calls: Record<string, number> = {}

  constructor(options: MemoryRegistryOptions) {
    this.clock = options.clock
  }

  /** Current store revision. */
  get currentRevision(): string {
    return String(this.revision)
  }

  /** Writes any key (a raw etcdctl put): `ttlSeconds` attaches a lease. */
  rawPut(fullKey: string, value: string, ttlSeconds?: number): void {
    this.expire()
    const leaseId = ttlSeconds === undefined ? 0n : this.grant(ttlSeconds)
    this.put(fullKey, value, leaseId)
  }

  rawDelete(fullKey: string): void {
    this.expire()
    this.remove(fullKey)
  }

  /** Drops history up to the current revision (or `revision`), as `etcdctl compact`. */
  compact(revision?: string): void {
    this.compacted = revision === undefined ? this.revision : BigInt(revision)
    this.history = this.history.filter((h) => h.revision > this.compacted)
    this.wake()
  }

  /** Ends every open watch with REGISTRY_UNAVAILABLE (a dropped connection). */
  disconnectWatches(): void {
    this.watchGeneration++
    this.wake()
  }

  async getConfig(prefix: string, signal: AbortSignal): Promise<string | undefined> {
    this.enter('getConfig', signal)
    return this.data.get(configKey(prefix))?.value
  }

  async putConfig(prefix: string, json: string, signal: AbortSignal): Promise<void> {
    this.enter('putConfig', signal)
    this.put(configKey(prefix), json, 0n)
  }

  async listSubnets(prefix: string, signal: AbortSignal): Promise<SubnetListing> {
    this.enter('listSubnets', signal)
    const base = subnetsPrefix(prefix)
    const entries: RegistryEntry[] = []
    for (const [k, s] of [...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (k.startsWith(base)) entries.push(this.entry(base, k, s))
    }
    return { entries, revision: String(this.revision) }
  }

  async getSubnet(prefix: string, key: string, signal: AbortSignal): Promise<SubnetRecord | undefined> {
    this.enter('getSubnet', signal)
    return this.record(prefix, key)
  }

  async createSubnet(prefix: string, key: string, value: string, ttlSeconds: number, signal: AbortSignal, grantedLeaseId?: string): Promise<SubnetRecord> {
    this.enter('createSubnet', signal)
    const full = subnetsPrefix(prefix) + key
    const granted = grantedLeaseId === undefined ? undefined : BigInt(grantedLeaseId)
    const leaseId = ttlSeconds > 0 ? (granted !== undefined && this.leases.has(granted) ? granted : this.grant(ttlSeconds)) : 0n
    this.beforeCreate?.(full)
    this.expire()
    if (this.data.has(full)) {
      this.leases.delete(leaseId)
      throw new WeftError('LEASE_CONFLICT', `subnet already exists: ${key}`, { details: { key } })
    }
    this.put(full, value, leaseId)
    return this.record(prefix, key) as SubnetRecord
  }

  async updateSubnet(prefix: string, key: string, value: string, ttlSeconds: number, signal: AbortSignal, listed?: ListedSubnet): Promise<SubnetRecord> {
    this.enter('updateSubnet', signal)
    const full = subnetsPrefix(prefix) + key
    const existing = this.data.get(full)
    const isReservation = existing !== undefined && existing.leaseId === 0n
    // As EtcdRegistry: with the listed entry unchanged, the granted lease is used as it is.
    const granted = listed?.grantedLeaseId === undefined ? undefined : BigInt(listed.grantedLeaseId)
    const unchanged = listed !== undefined && existing !== undefined && String(existing.modRevision) === listed.entry.modRevision
    const reuse = unchanged && granted !== undefined && this.leases.has(granted) ? granted : undefined
    this.put(full, value, isReservation ? 0n : reuse ?? this.grant(ttlSeconds))
    // As EtcdRegistry does: the superseded lease is revoked (it held only this key).
    if (existing && existing.leaseId !== 0n && this.leases.get(existing.leaseId)?.keys.size === 0) this.leases.delete(existing.leaseId)
    return this.record(prefix, key) as SubnetRecord
  }

  async replaceSubnet(prefix: string, key: string, value: string, ttlSeconds: number, expectedModRevision: string | undefined, signal: AbortSignal): Promise<SubnetRecord> {
    this.enter('replaceSubnet', signal)
    const full = subnetsPrefix(prefix) + key
    const existing = this.data.get(full)
    const current = existing === undefined ? undefined : String(existing.modRevision)
    if (current !== expectedModRevision) throw new WeftError('LEASE_CONFLICT', `subnet ${key} changed again meanwhile`, { details: { key } })
    this.put(full, value, ttlSeconds > 0 ? this.grant(ttlSeconds) : 0n)
    return this.record(prefix, key) as SubnetRecord
  }

  async deleteSubnet(prefix: string, key: string, signal: AbortSignal): Promise<void> {
    this.enter('deleteSubnet', signal)
    this.remove(subnetsPrefix(prefix) + key)
  }

  watchSubnets(prefix: string, fromRevision: string, signal: AbortSignal): AsyncIterable<RegistryWatchBatch> {
    const base = subnetsPrefix(prefix)
    return this.watch((k) => k.startsWith(base), base, BigInt(fromRevision), signal)
  }

  watchSubnet(prefix: string, key: string, fromRevision: string, signal: AbortSignal): AsyncIterable<RegistryWatchBatch> {
    const base = subnetsPrefix(prefix)
    const full = base + key
    return this.watch((k) => k === full, base, BigInt(fromRevision), signal)
  }

  async close(): Promise<void> {
    this.disconnectWatches()
  }

  private async *watch(match: (k: string) => boolean, base: string, from: bigint, signal: AbortSignal): AsyncGenerator<RegistryWatchBatch> {
    this.count('watch')
    const generation = this.watchGeneration
    let next = from
    while (!signal.aborted) {
      this.check()
      if (generation !== this.watchGeneration) throw unavailable('watch connection lost')
      this.expire()
      if (next <= this.compacted) {
        throw new WeftError('REGISTRY_COMPACTED', `required revision ${next} has been compacted`, { details: { compactRevision: String(this.compacted) } })
      }
      const items = this.history.filter((h) => h.revision >= next && match(h.key))
      if (items.length > 0 || next <= this.revision) {
        next = this.revision + 1n
        if (items.length > 0) {
          yield {
            revision: String(this.revision),
            changes: items.map((h): RegistryChange => ({
              type: h.type, key: h.key.slice(base.length), modRevision: String(h.revision),
              ...(h.value === undefined ? {} : { value: h.value }), leaseId: String(h.leaseId),
            })),
          }
          continue
        }
      }
      await this.waitForChange(signal)
    }
  }

  /** Resolves on the next write, compaction or disconnect, or when the next lease is due. */
  private async waitForChange(signal: AbortSignal): Promise<void> {
    let nextExpiry = Infinity
    for (const l of this.leases.values()) nextExpiry = Math.min(nextExpiry, l.expiresAt)
    const inner = new AbortController()
    const onAbort = (): void => inner.abort()
    signal.addEventListener('abort', onAbort, { once: true })
    let waker: (() => void) | undefined
    const woken = new Promise<void>((resolve) => {
      waker = resolve
      this.wakers.add(resolve)
    })
    const timers: Promise<void>[] = [woken]
    if (nextExpiry !== Infinity) timers.push(this.clock.sleep(Math.max(0, nextExpiry - this.clock.now()), inner.signal).catch(() => {}))
    timers.push(new Promise<void>((resolve) => inner.signal.addEventListener('abort', () => resolve(), { once: true })))
    try {
      await Promise.race(timers)
    } finally {
      if (waker) this.wakers.delete(waker)
      signal.removeEventListener('abort', onAbort)
      inner.abort()
    }
  }

  private enter(method: string, signal: AbortSignal): void {
    this.count(method)
    if (signal.aborted) throw signal.reason
    this.check()
    this.expire()
  }

  private count(method: string): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1
  }

  private check(): void {
    if (this.unavailable) throw unavailable('memory registry is unavailable')
  }

  async grantLease(ttlSeconds: number, signal: AbortSignal): Promise<string> {
    this.enter('grantLease', signal)
    return String(this.grant(ttlSeconds))
  }

  async releaseLease(leaseId: string): Promise<void> {
    const id = BigInt(leaseId)
    if (this.leases.get(id)?.keys.size === 0) this.leases.delete(id)
  }

  /** Number of TTL leases alive (granted and not revoked or expired), for assertions. */
  get liveLeases(): number {
    this.expire()
    return this.leases.size
  }

  private grant(ttlSeconds: number): bigint {
    const id = this.nextLease++
    this.leases.set(id, { expiresAt: this.clock.now() + ttlSeconds * 1000, keys: new Set() })
    return id
  }

  private put(full: string, value: string, leaseId: bigint): void {
    const old = this.data.get(full)
    if (old && old.leaseId !== 0n) this.leases.get(old.leaseId)?.keys.delete(full)
    this.revision++
    this.data.set(full, { value, leaseId, modRevision: this.revision })
    if (leaseId !== 0n) this.leases.get(leaseId)?.keys.add(full)
    this.history.push({ revision: this.revision, type: 'put', key: full, value, leaseId })
    this.wake()
  }

  private remove(full: string): void {
    const old = this.data.get(full)
    if (!old) return
    if (old.leaseId !== 0n) this.leases.get(old.leaseId)?.keys.delete(full)
    this.data.delete(full)
    this.revision++
    this.history.push({ revision: this.revision, type: 'delete', key: full, leaseId: 0n })
    this.wake()
  }

  /** Deletes keys of leases past their TTL, as etcd's lessor does. */
  private expire(): void {
    const now = this.clock.now()
    for (const [id, lease] of this.leases) {
      if (lease.expiresAt > now) continue
      this.leases.delete(id)
      for (const k of lease.keys) this.remove(k)
    }
  }

  private wake(): void {
    const wakers = [...this.wakers]
    this.wakers.clear()
    for (const w of wakers) w()
  }

  private entry(base: string, full: string, s: Stored): RegistryEntry {
    return { key: full.slice(base.length), value: s.value, leaseId: String(s.leaseId), modRevision: String(s.modRevision) }
  }

  private record(prefix: string, key: string): SubnetRecord | undefined {
    const base = subnetsPrefix(prefix)
    const s = this.data.get(base + key)
    if (!s) return undefined
    const lease = s.leaseId === 0n ? undefined : this.leases.get(s.leaseId)
    const ttl = lease ? Math.max(0, Math.ceil((lease.expiresAt - this.clock.now()) / 1000)) : undefined
    return { ...this.entry(base, base + key, s), ...(ttl === undefined ? {} : { ttlSeconds: ttl }), storeRevision: String(this.revision) }
  }
}

function unavailable(message: string): WeftError {
  return new WeftError('REGISTRY_UNAVAILABLE', message)
}
