import type { Lease, LeaseAttrs, LeaseWatchResult } from '../lease/lease.ts'
import type { NetworkConfig } from '../config/network-config.ts'

/** What reclaimLease found on our key, and the lease it wrote. */
export interface ReclaimedLease {
  readonly lease: Lease
  /** 'ours': nothing to do; 'absent': re-created; 'other': another writer's value (replaced unless onlyIfAbsent). */
  readonly found: 'ours' | 'absent' | 'other'
  /** The other writer's PublicIP (or "not a lease" for a value that does not parse). */
  readonly otherPublicIP?: string
}

/**
 * Where leases live (etcd, or the Kubernetes API). The allocation rules live in the
 * implementation; backends only acquire, and consume the watch.
 */
export interface SubnetManager {
  readonly name: string
  /** Reads and validates the network config; rejects with CONFIG_NOT_FOUND or CONFIG_INVALID. */
  getNetworkConfig(signal: AbortSignal): Promise<NetworkConfig>
  /** Reuses or allocates this host's lease with the given attributes. */
  acquireLease(config: NetworkConfig, attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease>
  /** Extends the lease; resolves with the new expiration. */
  renewLease(lease: Lease, signal: AbortSignal): Promise<Lease>
  /** Every valid lease at one revision (start-up may answer from the listing it prefetched). */
  listLeases(signal: AbortSignal): Promise<Lease[]>
  /** Every lease except `own`: a snapshot first, then batches of events; re-lists after compaction. */
  watchLeases(own: Lease | undefined, signal: AbortSignal): AsyncIterable<LeaseWatchResult>
  /** Changes to our own lease; a 'removed' event means it was revoked. */
  watchLease(own: Lease, signal: AbortSignal): AsyncIterable<LeaseWatchResult>
  /**
   * Writes our lease back over our key after another writer replaced or deleted it (etcd only;
   * without it, a deleted key ends the daemon as in flannel).
   */
  reclaimLease?(lease: Lease, signal: AbortSignal, options?: { readonly onlyIfAbsent?: boolean }): Promise<ReclaimedLease>
  /**
   * Runs once the host serves (flannel's CompleteLease): the kube manager sets the node's
   * NetworkUnavailable condition. Background work: it retries on its own and never stops the daemon.
   */
  completeLease?(lease: Lease, signal: AbortSignal): Promise<void>
  close(): Promise<void>
}
