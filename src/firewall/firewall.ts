/**
 * The firewall seam: the traffic manager states *intent* (masquerade and forward-accept for one
 * family's cluster network and this host's subnet) and a Firewall turns it into iptables or
 * nftables rules. Implementations: IpTablesFirewall, NfTablesFirewall, MemoryFirewall (tests).
 */
import type { Family, IpNet } from '../ip/ip.ts'

/** What flannel's --ip-masq and --iptables-forward-rules ask for, for one address family. */
export interface TrafficIntent {
  readonly family: Family
  /** The cluster network (FLANNEL_NETWORK / FLANNEL_IPV6_NETWORK). */
  readonly network: IpNet
  /** This host's pod subnet (the lease). */
  readonly subnet: IpNet
  /** Install the masquerade rules (--ip-masq). */
  readonly masq: boolean
  /** Install the forward-accept rules (--iptables-forward-rules). */
  readonly forward: boolean
  /** Append `--random-fully` / `fully-random` to the masquerade targets. */
  readonly randomFully: boolean
}

export type FirewallKind = 'iptables' | 'nftables'

export interface Firewall {
  readonly kind: FirewallKind
  /** Whether masquerade can be fully randomised for this family (iptables ≥ 1.6.2, nft probe). */
  supportsRandomFully(family: Family): Promise<boolean>
  /**
   * Installs the intent's rules in one atomic step per table, removing rules built from `stale`
   * (a previous network/subnet) first. Idempotent.
   */
  apply(intent: TrafficIntent, stale?: TrafficIntent): Promise<void>
  /** True when every rule of the intent is present; one read of the ruleset per call. */
  check(intent: TrafficIntent): Promise<boolean>
  /** Removes every artefact this mode creates (used when the other mode is chosen). */
  cleanup(families: readonly Family[]): Promise<void>
}
