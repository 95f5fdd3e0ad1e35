/** Leases as plain readonly data; the wire form lives in lease-codec.ts. */
import type { IpAddr, IpNet } from '../ip/ip.ts'

export interface LeaseAttrs {
  /** IPv4 public address ("0.0.0.0" form never appears here: undefined on an IPv6-only host). */
  readonly publicIP?: IpAddr
  readonly publicIPv6?: IpAddr
  /** flannel's BackendType; '' when absent (udp and alloc write none). */
  readonly backendType: string
  /** Raw JSON value of BackendData, parsed only by the owning backend. */
  readonly backendData?: unknown
  readonly backendV6Data?: unknown
}

export interface Lease {
  /** IPv4 subnet; undefined only on an IPv6-only (kube) lease. */
  readonly subnet?: IpNet
  readonly ipv6Subnet?: IpNet
  readonly attrs: LeaseAttrs
  /** Epoch ms when the store drops the lease; undefined for a reservation (no TTL). */
  readonly expiration?: number
  /** Store revision the lease was read at (etcd mod revision); opaque. */
  readonly revision?: string
}

export type LeaseEvent = { readonly type: 'added'; readonly lease: Lease } | { readonly type: 'removed'; readonly lease: Lease }

/** One watch step: a batch of changes, or a full snapshot after a (re)list. */
export type LeaseWatchResult =
  | { readonly kind: 'events'; readonly events: readonly LeaseEvent[] }
  | { readonly kind: 'snapshot'; readonly leases: readonly Lease[] }
