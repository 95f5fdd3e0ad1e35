/**
 * Everything the checks look at, gathered once (gather.ts) so that every check is a pure function
 * of these facts. Addresses are text; `undefined` means "not known / not applicable", which no
 * check turns into a finding.
 */

/** One probe: answered or not, with the round trip when it answered. */
export interface ProbeResult {
  readonly ok: boolean
  readonly rttMs?: number
}

/** A peer host as the store describes it, with what this host's kernel and probes know of it. */
export interface PeerFacts {
  /** Node name (kube) or public IP (etcd): how findings and the dashboard name it. */
  readonly name: string
  readonly publicIp?: string
  /** IPv4 subnet, network form (10.5.72.0/24). */
  readonly subnet?: string
  readonly backendType: string
  readonly vtepMac?: string
  /** Ping of the public IP on the underlay. */
  readonly underlay?: ProbeResult
  /** Ping of the peer's overlay address (its subnet's .0, on its flannel device) through the overlay. */
  readonly overlay?: ProbeResult
  /** Don't-fragment ping filling this host's device MTU, through the overlay. */
  readonly overlayFull?: ProbeResult & { readonly bytes: number }
  /** The main-table route to the peer's subnet; null when there is none. */
  readonly route?: { readonly dev?: string; readonly gateway?: string } | null
  /** MAC of the neighbour entry for the peer's overlay address on the device; null when absent. */
  readonly neighMac?: string | null
  /** Destinations of the device's FDB entries for the peer's VTEP MAC. */
  readonly fdbDsts?: readonly string[]
  /** Device the kernel would use to reach the public IP (`ip route get`). */
  readonly underlayDev?: string
}

/** A lease (etcd) or a managed node (kube) from the store. */
export interface LeaseFacts {
  readonly name: string
  readonly subnet?: string
  readonly publicIp?: string
  /** Seconds until the store drops it; undefined for a reservation or a kube node. */
  readonly expiresInSeconds?: number
}

/** Rules and FORWARD policy one iptables variant holds (iptables-save output, parsed). */
export interface IptablesFacts {
  readonly variant: 'legacy' | 'nft'
  /** FORWARD chain policy in the filter table; undefined when the table is not loaded. */
  readonly forwardPolicy?: string
  /** Number of rules in or jumping to FLANNEL-* chains (nat and filter). */
  readonly flannelRules: number
  /** Whether FORWARD accepts traffic from and to the cluster network (flannel's forward rules or equivalent). */
  readonly acceptsNetwork: boolean
}

export interface DeviceFacts {
  readonly name: string
  readonly mtu: number
  readonly mac?: string
  readonly up: boolean
  /** `tx-checksum-ip-generic` from ethtool; undefined when it could not be read. */
  readonly txChecksumIpGeneric?: boolean
}

export interface DoctorFacts {
  readonly mode: 'etcd' | 'kube'
  /** This host's name in findings (node name or public IP). */
  readonly host: string
  readonly backendType: string
  /** IPv4 cluster network (FLANNEL_NETWORK). */
  readonly network?: string
  readonly enableIPv6: boolean
  readonly enableNFTables: boolean
  /** The interface chosen with weftd's rules (--iface, --iface-regex, default route). */
  readonly iface: { readonly name: string; readonly mtu: number; readonly addr?: string }
  /** Backend.MTU (0 or undefined: the interface's). */
  readonly backendMtu?: number
  /** The overlay device weftd keeps (flannel.<VNI>), null when it should exist and does not, undefined for backends without one. */
  readonly device?: DeviceFacts | null
  /** The MTU the device should have (underlay minus encapsulation). */
  readonly expectedDeviceMtu?: number
  readonly subnetEnv: { readonly path: string; readonly values?: Readonly<Record<string, string>> }
  /** This host's lease (by its public IP, or its node). */
  readonly own?: { readonly subnet?: string; readonly publicIp?: string; readonly vtepMac?: string; readonly expiresInSeconds?: number }
  readonly leases: readonly LeaseFacts[]
  readonly renewMarginMinutes: number
  /** Sysctl values (trimmed), undefined when absent. */
  readonly sysctl: {
    readonly ipForward?: string
    readonly ipv6Forward?: string
    readonly brNfCallIptables?: string
    readonly brNfCallIp6tables?: string
  }
  /** Bridge devices on this host (cni0, docker0): pods that bridged traffic must reach iptables for. */
  readonly bridges: readonly string[]
  readonly iptables: readonly IptablesFacts[]
  /** Native nftables tables weft/flannel made (flannel-ipv4, flannel-ipv6). */
  readonly nftTables: readonly string[]
  /** `uname -r`. */
  readonly kernelRelease: string
  /** Kube mode: this host's Node. */
  readonly node?: { readonly name: string; readonly podCidr?: string }
  /** --iptables-forward-rules. */
  readonly forwardRules: boolean
  readonly peers: readonly PeerFacts[]
}
