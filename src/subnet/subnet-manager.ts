import type { Lease, LeaseAttrs, LeaseWatchResult } from '../lease/lease.ts'
import type { NetworkConfig } from '../config/network-config.ts'

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
   * Runs once the host serves (flannel's CompleteLease): the kube manager sets the node's
   * NetworkUnavailable condition. Background work: it retries on its own and never stops the daemon.
   */
  completeLease?(lease: Lease, signal: AbortSignal): Promise<void>
  close(): Promise<void>
}
