/**
 * The udp backend's peers (pure): applies lease watch steps to the set of known leases and
 * derives the forwarding table the worker uses. As in flannel, leases are not filtered by
 * BackendType (udp writes none); unlike flannel, a lease that overlaps this host's subnet or
 * another peer, lies outside the Network, or names our own address is refused with a reason.
 */
import type { IpAddr, IpNet } from '../../ip/ip.ts'
import type { Lease, LeaseWatchResult } from '../../lease/lease.ts'
import { formatIp } from '../../ip/ip.ts'
import { checkLease, leaseKey, SubnetIndex } from '../lease-validation.ts'
import type { WorkerPeer } from './data-path-worker.ts'

export interface PeerTableContext {
  readonly network: IpNet
  readonly own: Lease
  /** Destination port of every peer: flannel sends to the LOCAL configured Port. */
  readonly port: number
}

export interface PeerTableResult {
  readonly peers: readonly WorkerPeer[]
  /** Lease key → reason, for leases refused in this evaluation. */
  readonly refused: ReadonlyMap<string, string>
}

/** Host-order number of an IPv4 address. */
export const ipv4Number = (ip: IpAddr): number => Number(ip.value) >>> 0

export class PeerTable {
  private readonly leases = new Map<string, Lease>()

  constructor(private readonly ctx: PeerTableContext) {}

  /** Applies a watch step; returns true when the set of leases changed. */
  apply(step: LeaseWatchResult): boolean {
    const before = this.signature()
    if (step.kind === 'snapshot') {
      this.leases.clear()
      for (const lease of step.leases) this.put(lease)
    } else {
      for (const event of step.events) {
        const key = leaseKey(event.lease, [4])
        if (key === undefined) continue
        if (event.type === 'added') this.put(event.lease)
        else this.leases.delete(key)
      }
    }
    return this.signature() !== before
  }

  get size(): number {
    return this.leases.size
  }

  /** Validates every known lease (in arrival order) and returns the accepted peers. */
  evaluate(): PeerTableResult {
    const accepted = new SubnetIndex()
    const peers: WorkerPeer[] = []
    const refused = new Map<string, string>()
    const checkCtx = { families: [4 as const], networks: { 4: this.ctx.network }, own: this.ctx.own }
    for (const [key, lease] of this.leases) {
      const verdict = checkLease({ ...checkCtx, backendType: lease.attrs.backendType }, lease, accepted)
      if (!verdict.ok) {
        refused.set(key, verdict.reason)
        continue
      }
      const subnet = lease.subnet as IpNet
      accepted.add(subnet, key)
      peers.push({ net: Number(subnet.addr) >>> 0, prefix: subnet.prefix, ip: ipv4Number(lease.attrs.publicIP as IpAddr), port: this.ctx.port })
    }
    return { peers, refused }
  }

  private put(lease: Lease): void {
    const key = leaseKey(lease, [4])
    if (key === undefined) return
    // Re-insert so a changed lease is evaluated after the ones it might now overlap.
    this.leases.delete(key)
    this.leases.set(key, lease)
  }

  private signature(): string {
    return [...this.leases].map(([k, l]) => `${k}@${l.attrs.publicIP ? formatIp(l.attrs.publicIP) : '-'}`).sort().join(',')
  }
}

/** `10.5.3.0/24 → 192.168.1.3:8285` for logs. */
export function describePeer(p: WorkerPeer): string {
  const ip = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
  return `${ip(p.net)}/${p.prefix} → ${ip(p.ip)}:${p.port}`
}
