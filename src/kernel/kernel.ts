/**
 * The one seam between weft and the Linux networking stack. Backends compute desired state
 * and call these methods; only `kernel/linux/` speaks netlink, and `MemoryKernel` is its twin
 * for unit tests. Values in, values out; one `family` parameter instead of V4/V6 twins.
 *
 * Semantics (both implementations): `create*` fails with EEXIST when the object exists;
 * `replace*` creates or overwrites; `delete*` of an absent object fails with the errno Linux
 * uses for it: ENODEV for a link, ESRCH for a route, EADDRNOTAVAIL for an address, ENOENT for
 * a neighbour or FDB entry (`isKernelNotFound()` in kernel-error.ts matches all of them);
 * a route, address, neighbour or FDB entry must name an existing link (ENODEV otherwise).
 * Failures are `KernelError`s carrying the errno name, the operation and the object.
 * test/compliance/kernel-contract.ts pins these down against real Linux.
 */
import type { Family, IpAddr, IpNet } from '../ip/ip.ts'

export interface VxlanAttrs {
  /** VXLAN network identifier. */
  readonly vni: number
  /** UDP destination port; 0 leaves the kernel default (8472). */
  readonly port: number
  /** Source address of encapsulated packets (the host's public IP). */
  readonly local?: IpAddr
  /** Underlay device index (`dev`). */
  readonly parentIndex?: number
  readonly learning: boolean
  /** Group Based Policy extension. */
  readonly gbp: boolean
}

/** An ipip tunnel's endpoints (`ip link add flannel.ipip type ipip local 10.0.0.1`). */
export interface IpipAttrs {
  readonly local?: IpAddr
  /** Undefined (0.0.0.0) for a point-to-multipoint tunnel, as flannel's. */
  readonly remote?: IpAddr
}

export interface IpipSpec extends IpipAttrs {
  readonly name: string
  readonly mtu?: number
}

export interface Link {
  readonly index: number
  readonly name: string
  /** rtnetlink kind: 'vxlan', 'tun', 'veth', 'bridge', 'dummy', ... ; undefined for a plain device. */
  readonly kind?: string
  readonly mtu: number
  /** Lower-case colon form, e.g. 'c6:d2:32:6f:8f:44'; undefined for a TUN device. */
  readonly mac?: string
  readonly up: boolean
  readonly vxlan?: VxlanAttrs
  readonly ipip?: IpipAttrs
}

export interface VxlanSpec extends VxlanAttrs {
  readonly name: string
  readonly mtu?: number
  readonly mac?: string
}

export interface Addr {
  readonly index: number
  readonly ip: IpAddr
  readonly prefix: number
  /** 'global' (0), 'link' (253), 'host' (254). */
  readonly scope?: RouteScope
}

export type RouteScope = 'universe' | 'link' | 'host'
export type RouteType = 'unicast' | 'blackhole' | 'unreachable' | 'local'

export interface Route {
  readonly dst: IpNet
  readonly gateway?: IpAddr
  /** Output device index. */
  readonly index?: number
  readonly onlink?: boolean
  readonly scope?: RouteScope
  /** Default 'unicast'. */
  readonly type?: RouteType
  /** Default main (254). */
  readonly table?: number
  readonly src?: IpAddr
  readonly metric?: number
}

export interface RouteFilter {
  readonly family: Family
  readonly index?: number
  readonly table?: number
  readonly type?: RouteType
  readonly dst?: IpNet
}

export type NeighState = 'permanent' | 'reachable' | 'stale' | 'noarp' | 'failed' | 'incomplete' | 'delay' | 'probe' | 'none'

export interface Neigh {
  readonly index: number
  readonly ip: IpAddr
  readonly mac?: string
  readonly state?: NeighState
}

/** A bridge forwarding-database entry (AF_BRIDGE), e.g. a VTEP's MAC → remote public IP. */
export interface FdbEntry {
  readonly index: number
  readonly mac: string
  /** Remote VTEP address (vxlan). */
  readonly dst?: IpAddr
  /** NTF_SELF: program the device itself, as `bridge fdb ... self`. Default true. */
  readonly self?: boolean
  readonly state?: NeighState
}

export interface TunSpec {
  readonly name: string
  readonly multiQueue?: boolean
  /** Number of queues to open (multi-queue only); default 1. */
  readonly queues?: number
}

/** An open TUN device: closing every fd removes a non-persistent device. */
export interface TunDevice {
  readonly name: string
  readonly index: number
  /** One non-blocking file descriptor per queue. */
  readonly fds: readonly number[]
  close(): void
}

/** A WireGuard peer as configured on a device (keys in base64, as `wg` prints them). */
export interface WireGuardPeer {
  readonly publicKey: string
  readonly presharedKey?: string
  readonly endpoint?: { readonly ip: IpAddr; readonly port: number }
  readonly allowedIPs: readonly IpNet[]
  /** Seconds; 0 or absent = off. */
  readonly persistentKeepalive?: number
}

/** A WireGuard device's configuration (`wg show <dev> dump`). */
export interface WireGuardState {
  readonly publicKey?: string
  readonly listenPort: number
  readonly peers: readonly WireGuardPeer[]
}

/** A change to a WireGuard device (wgctrl's Config): peers are upserted or removed by public key. */
export interface WireGuardChange {
  readonly privateKey?: string
  readonly listenPort?: number
  readonly replacePeers?: boolean
  /** Each peer's allowed IPs replace its previous ones. */
  readonly peers?: readonly WireGuardPeer[]
  readonly removePeers?: readonly string[]
}

export interface WireGuardSpec {
  readonly name: string
  readonly mtu: number
}

/** How a WireGuard device is implemented: the kernel module, or wireguard-go on a TUN device. */
export type WireGuardImpl = 'kernel' | 'userspace'

export type KernelEvent =
  | { readonly kind: 'link'; readonly action: 'new' | 'del'; readonly link: Link }
  | { readonly kind: 'addr'; readonly action: 'new' | 'del'; readonly addr: Addr }
  | { readonly kind: 'route'; readonly action: 'new' | 'del'; readonly route: Route }
  | { readonly kind: 'neigh'; readonly action: 'new' | 'del'; readonly neigh: Neigh }
  | { readonly kind: 'fdb'; readonly action: 'new' | 'del'; readonly fdb: FdbEntry }

export type KernelEventKind = KernelEvent['kind']

export interface Kernel {
  getLink(name: string): Promise<Link | undefined>
  getLinkByIndex(index: number): Promise<Link | undefined>
  listLinks(): Promise<Link[]>
  createVxlan(spec: VxlanSpec): Promise<Link>
  /** `ip link add <name> type ipip local <ip>`; EOPNOTSUPP when the kernel has no ipip module. */
  createIpip(spec: IpipSpec): Promise<Link>
  /** Opens (creating if needed) a TUN device with IFF_TUN|IFF_NO_PI. */
  openTun(spec: TunSpec): Promise<TunDevice>
  /**
   * Creates a WireGuard device: the kernel's (`ip link add type wireguard`) when the module is
   * there, else a userspace one (wireguard-go on a TUN device, owned by this Kernel and stopped
   * by deleteLink or close). EEXIST when a link of that name exists.
   */
  createWireGuard(spec: WireGuardSpec): Promise<{ readonly link: Link; readonly impl: WireGuardImpl }>
  /** Applies a change to a WireGuard device (ENODEV when there is none of that name). */
  configureWireGuard(name: string, change: WireGuardChange): Promise<void>
  /** The device's configuration; undefined when no WireGuard device has that name. */
  getWireGuard(name: string): Promise<WireGuardState | undefined>
  setLink(index: number, change: { up?: boolean; mtu?: number; mac?: string }): Promise<void>
  deleteLink(index: number): Promise<void>

  replaceAddr(addr: Addr): Promise<void>
  deleteAddr(addr: Addr): Promise<void>
  listAddrs(family: Family, index?: number): Promise<Addr[]>

  replaceRoute(route: Route): Promise<void>
  deleteRoute(route: Route): Promise<void>
  /** Routes of one family; `filter.table` defaults to main (254), 0 means every table. */
  listRoutes(filter: RouteFilter): Promise<Route[]>
  /** `ip route get`: the route the kernel would use for `dst`. */
  routeGet(dst: IpAddr): Promise<Route>

  replaceNeigh(neigh: Neigh): Promise<void>
  deleteNeigh(neigh: Neigh): Promise<void>
  listNeighs(family: Family, index?: number): Promise<Neigh[]>

  /** `bridge fdb replace`. */
  replaceFdb(entry: FdbEntry): Promise<void>
  /** `bridge fdb append` (several dsts for one MAC). */
  appendFdb(entry: FdbEntry): Promise<void>
  deleteFdb(entry: FdbEntry): Promise<void>
  listFdb(index?: number): Promise<FdbEntry[]>

  /** Path below /proc/sys, e.g. 'net/ipv6/conf/flannel.1/accept_ra'. */
  setSysctl(path: string, value: string): Promise<void>
  getSysctl(path: string): Promise<string | undefined>

  /**
   * Notifications for the given kinds until the signal aborts. Resolves once the subscription
   * is live (changes made after that are reported); events arrive asynchronously.
   */
  subscribe(kinds: readonly KernelEventKind[], onEvent: (event: KernelEvent) => void, signal: AbortSignal): Promise<void>

  close(): void
}
