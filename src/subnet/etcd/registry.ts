/**
 * The storage seam under EtcdSubnetManager (flannel pkg/subnet/etcd/registry.go): the few
 * operations the allocation rules need, on the key layout `<prefix>/config` and
 * `<prefix>/subnets/<key>`. Implemented by EtcdRegistry (etcd v3 JSON gateway) and
 * MemoryRegistry (tests, demos). Every `prefix` argument is the network prefix, e.g.
 * `/coreos.com/network`; `key` is the last segment, e.g. `10.5.3.0-24`.
 */

/** One stored subnet key. */
export interface RegistryEntry {
  /** Key below `<prefix>/subnets/`. */
  readonly key: string
  /** Raw stored value (flannel's LeaseAttrs JSON, or garbage written by someone else). */
  readonly value: string
  /** etcd lease id as a decimal string; '0' for a key without TTL (a reservation). */
  readonly leaseId: string
  /** Revision of the last write to this key. */
  readonly modRevision: string
}

/**
 * The key as a listing just saw it, for updateSubnet: then the update is one conditional write,
 * applied only if the key is still at that revision (a listed reservation stays one, anything
 * else moves to `grantedLeaseId`); if it changed meanwhile, the plain update runs instead.
 */
export interface ListedSubnet {
  readonly entry: RegistryEntry
  /** A lease granted ahead (as for createSubnet); the record's leaseId says whether it was used. */
  readonly grantedLeaseId?: string
}

/** A subnet key together with the remaining TTL of its etcd lease. */
export interface SubnetRecord extends RegistryEntry {
  /** Remaining seconds; undefined for a reservation. */
  readonly ttlSeconds?: number
  /** Store revision this record was read or written at; watch the key from revision + 1. */
  readonly storeRevision: string
}

export interface RegistryChange {
  readonly type: 'put' | 'delete'
  readonly key: string
  /** Present for 'put'. */
  readonly value?: string
  readonly leaseId?: string
  readonly modRevision: string
}

export interface RegistryWatchBatch {
  /** Store revision after this batch; resume the watch at revision + 1. */
  readonly revision: string
  /** May be empty (a progress notification: only the revision moved). */
  readonly changes: readonly RegistryChange[]
}

export interface SubnetListing {
  readonly entries: readonly RegistryEntry[]
  /** Store revision of the consistent snapshot; watch from revision + 1. */
  readonly revision: string
}

/**
 * Errors: REGISTRY_UNAVAILABLE when no endpoint answers, LEASE_CONFLICT when a create loses
 * the race, REGISTRY_COMPACTED when a watch's start revision was compacted. On abort,
 * calls reject with the signal's reason and watches end.
 */
export interface Registry {
  /** The raw `<prefix>/config` JSON, or undefined when the key does not exist. */
  getConfig(prefix: string, signal: AbortSignal): Promise<string | undefined>
  putConfig(prefix: string, json: string, signal: AbortSignal): Promise<void>
  /** Every key under `<prefix>/subnets/` at one revision (paginated underneath). */
  listSubnets(prefix: string, signal: AbortSignal): Promise<SubnetListing>
  /** One key with its remaining TTL, or undefined when absent. */
  getSubnet(prefix: string, key: string, signal: AbortSignal): Promise<SubnetRecord | undefined>
  /**
   * Creates the key attached to a new TTL lease, only if it does not exist (LEASE_CONFLICT
   * otherwise). `ttlSeconds` 0 creates it without a lease: a reservation.
   */
  createSubnet(prefix: string, key: string, value: string, ttlSeconds: number, signal: AbortSignal, grantedLeaseId?: string): Promise<SubnetRecord>
  /**
   * Grants a TTL lease ahead of createSubnet (`grantedLeaseId`), so acquisition can overlap the
   * grant, a store write, with the listing instead of waiting for both in turn.
   */
  grantLease(ttlSeconds: number, signal: AbortSignal): Promise<string>
  /** Revokes a granted lease that ended up unused; never throws. */
  releaseLease(leaseId: string): Promise<void>
  /**
   * Rewrites the key with a fresh TTL lease (renewal, reuse). A key that exists without a
   * lease is a reservation and stays one: it is rewritten without TTL.
   */
  updateSubnet(prefix: string, key: string, value: string, ttlSeconds: number, signal: AbortSignal, listed?: ListedSubnet): Promise<SubnetRecord>
  /**
   * Writes the key only while it is as last seen: at `expectedModRevision`, or absent when that is
   * undefined (LEASE_CONFLICT otherwise), attached to a fresh TTL lease (`ttlSeconds` 0: none).
   * Used to take our key back from another writer; that writer's lease is left alone.
   */
  replaceSubnet(prefix: string, key: string, value: string, ttlSeconds: number, expectedModRevision: string | undefined, signal: AbortSignal): Promise<SubnetRecord>
  deleteSubnet(prefix: string, key: string, signal: AbortSignal): Promise<void>
  /** Changes under `<prefix>/subnets/` from `fromRevision` on; throws REGISTRY_COMPACTED if it is gone. */
  watchSubnets(prefix: string, fromRevision: string, signal: AbortSignal): AsyncIterable<RegistryWatchBatch>
  /** Changes to one key from `fromRevision` on. */
  watchSubnet(prefix: string, key: string, fromRevision: string, signal: AbortSignal): AsyncIterable<RegistryWatchBatch>
  close(): Promise<void>
}

/** `<prefix>/subnets/`, tolerating a trailing slash on the prefix. */
export function subnetsPrefix(prefix: string): string {
  return `${prefix.replace(/\/+$/, '')}/subnets/`
}

export function configKey(prefix: string): string {
  return `${prefix.replace(/\/+$/, '')}/config`
}
