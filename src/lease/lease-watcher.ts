/**
 * Pure reducer that turns watch snapshots and event batches into the diff a backend applies
 * (port of flannel pkg/lease/lease.go LeaseWatcher). Keyed by subnet in a Map, so a snapshot
 * of thousands of leases costs O(n), not flannel's O(n²).
 */
import type { IpNet } from '../ip/ip.ts'
import type { Lease, LeaseEvent } from './lease.ts'

/** Identity of a lease: its IPv4 subnet, or its IPv6 subnet on an IPv6-only lease. */
export function leaseIdentity(lease: Pick<Lease, 'subnet' | 'ipv6Subnet'>): string {
  const net: IpNet | undefined = lease.subnet ?? lease.ipv6Subnet
  return net ? `${net.family}:${net.addr.toString(16)}/${net.prefix}` : ''
}

export class LeaseWatcher {
  private readonly known = new Map<string, Lease>()
  private readonly ownId: string | undefined

  /** @param own this host's lease; events about its subnet are never reported. */
  constructor(own?: Lease) {
    this.ownId = own ? leaseIdentity(own) : undefined
  }

  /** Leases currently known (other hosts only), in arrival order. */
  get leases(): readonly Lease[] {
    return [...this.known.values()]
  }

  /**
   * Replaces the known set with a full snapshot: 'added' for leases not known before,
   * 'removed' (with the stored copy) for known leases missing from it. Leases in both are
   * not re-emitted, but the stored copy is replaced.
   */
  reset(snapshot: readonly Lease[]): LeaseEvent[] {
    const events: LeaseEvent[] = []
    const next = new Map<string, Lease>()
    for (const lease of snapshot) {
      const id = leaseIdentity(lease)
      if (id === this.ownId) continue
      if (!this.known.has(id) && !next.has(id)) events.push({ type: 'added', lease })
      next.set(id, lease)
    }
    for (const [id, lease] of this.known) {
      if (!next.has(id)) events.push({ type: 'removed', lease })
    }
    this.known.clear()
    for (const [id, lease] of next) this.known.set(id, lease)
    return events
  }

  /**
   * Applies a batch: 'added' stores (or replaces) the lease and is always reported, since a
   * renewal or attribute change arrives the same way; 'removed' reports the stored copy,
   * which carries the attributes a delete event lacks.
   */
  update(batch: readonly LeaseEvent[]): LeaseEvent[] {
    const events: LeaseEvent[] = []
    for (const event of batch) {
      const id = leaseIdentity(event.lease)
      if (id === this.ownId) continue
      if (event.type === 'added') {
        this.known.set(id, event.lease)
        events.push(event)
      } else {
        const stored = this.known.get(id)
        this.known.delete(id)
        events.push({ type: 'removed', lease: stored ?? event.lease })
      }
    }
    return events
  }
}
