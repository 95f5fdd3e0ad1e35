/**
 * flannel's network config JSON (etcd `<prefix>/config` or net-conf.json), parsed into a frozen,
 * fully defaulted value. The parser is a port of flannel's ParseConfig + CheckNetworkConfig.
 */
import type { IpAddr, IpNet } from '../ip/ip.ts'

/** The `Backend` section after the backend's own parser ran. */
export interface BackendConfig {
  /** Lower-cased flannel type string: 'vxlan', 'host-gw', 'udp', 'alloc', 'aws-vpc', 'gce', 'ali-vpc'. */
  readonly type: string
  /** Backend-specific options, as returned by that backend's `parseOptions`. */
  readonly options: unknown
}

export interface FamilyConfig {
  readonly network: IpNet
  readonly subnetLen: number
  /** First and last subnet addresses that may be allocated (inclusive). */
  readonly subnetMin: IpAddr
  readonly subnetMax: IpAddr
}

export interface NetworkConfig {
  readonly enableIPv4: boolean
  readonly enableIPv6: boolean
  /** Present when enableIPv4. */
  readonly ipv4?: FamilyConfig
  /** Present when enableIPv6. */
  readonly ipv6?: FamilyConfig
  readonly enableNFTables: boolean
  readonly backend: BackendConfig
}
