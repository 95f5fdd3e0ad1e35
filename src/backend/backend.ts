/**
 * The backend contract (libp2p's transport shape): a backend registers this host's network,
 * which acquires the lease with the backend's own attributes and sets up devices; the returned
 * Network then consumes the lease watch and programs the data plane until aborted.
 */
import type { IpAddr } from '../ip/ip.ts'
import type { Lease } from '../lease/lease.ts'
import type { NetworkConfig } from '../config/network-config.ts'
import type { SubnetManager } from '../subnet/subnet-manager.ts'
import type { Kernel } from '../kernel/kernel.ts'
import type { Logger } from '../log/logger.ts'
import type { Clock } from '../util/clock.ts'
import type { BackendRecorder } from '../metrics/recorder.ts'

/** The underlay interface chosen from --iface / --iface-regex / --iface-can-reach / --public-ip. */
export interface ExternalInterface {
  readonly name: string
  readonly index: number
  readonly mtu: number
  /** The interface's own IPv4 address (first usable), if the IPv4 stack is on. */
  readonly ifaceAddr?: IpAddr
  readonly ifaceV6Addr?: IpAddr
  /** Address advertised to peers: --public-ip, else ifaceAddr. */
  readonly extAddr?: IpAddr
  readonly extV6Addr?: IpAddr
}

export interface BackendDeps {
  readonly subnetManager: SubnetManager
  readonly extIface: ExternalInterface
  readonly kernel: Kernel
  readonly logger: Logger
  readonly clock: Clock
  /** Reconcile timings, repairs, peer counts (weft_*); absent when metrics are off. */
  readonly metrics?: BackendRecorder
}

export interface Network {
  /** This host's lease, as acquired. */
  readonly lease: Lease
  /** MTU for pods (FLANNEL_MTU). */
  readonly mtu: number
  /** Consumes the lease watch and programs the data plane; resolves after the signal aborts. */
  run(signal: AbortSignal): Promise<void>
}

export interface Backend {
  readonly type: string
  registerNetwork(config: NetworkConfig, signal: AbortSignal): Promise<Network>
}

/**
 * What the registry knows about a backend without loading it: the option parser is small and
 * eager (config validation happens before any side effect); the implementation loads lazily.
 */
export interface BackendDefinition<Options = unknown> {
  readonly type: string
  /** Validates the `Backend` section (keys already lower-cased); throws ConfigError naming the field. */
  parseOptions(section: Readonly<Record<string, unknown>>): Options
  load(): Promise<(options: Options, deps: BackendDeps) => Backend>
  /**
   * Whether any of the backend's JavaScript stays hot (per-peer or per-packet work). When none
   * does, V8's optimizing compiler only costs memory: its code (~4 MB of the node binary) is
   * paged in to compile a few thousand lease decodings once.
   */
  readonly hotCode: boolean
}
