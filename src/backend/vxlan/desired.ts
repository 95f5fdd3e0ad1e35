/**
 * vxlan desired state for one peer and family (pure), in flannel's order:
 *   1. neighbour: remote subnet address → remote VTEP MAC on flannel.N (permanent), so the
 *      kernel never ARPs across the overlay;
 *   2. FDB: remote VTEP MAC → remote public IP (`bridge fdb replace ... self permanent dst`);
 *   3. route last: `<subnet> via <subnet address> dev flannel.N onlink`, so no packet is routed
 *      to the peer before its L2 entries exist.
 * With DirectRouting and a peer on the same L2 segment: one plain route via its public IP.
 */
import type { IpAddr, IpNet } from '../../ip/ip.ts'
import type { KernelEntry } from '../../kernel/apply.ts'
import { netIp } from '../../ip/ip.ts'

/** One family of a validated remote lease. */
export interface VxlanPeer {
  readonly subnet: IpNet
  readonly publicIp: IpAddr
  readonly vtepMac: string
}

/** Entries for one family of a peer; `direct` is the DirectRouting decision for it. */
export function vxlanPeerEntries(peer: VxlanPeer, deviceIndex: number, direct: boolean): KernelEntry[] {
  if (direct) return [{ kind: 'route', route: { dst: peer.subnet, gateway: peer.publicIp } }]
  const gateway = netIp(peer.subnet)
  return [
    { kind: 'neigh', neigh: { index: deviceIndex, ip: gateway, mac: peer.vtepMac, state: 'permanent' } },
    { kind: 'fdb', fdb: { index: deviceIndex, mac: peer.vtepMac, dst: peer.publicIp, self: true, state: 'permanent' } },
    { kind: 'route', route: { dst: peer.subnet, gateway, index: deviceIndex, onlink: true } },
  ]
}

/**
 * flannel's DirectRouting test: `ip route get <peer public IP>` answers a route without a
 * gateway, i.e. the peer is on-link.
 */
export function isDirectlyReachable(route: { readonly gateway?: IpAddr } | undefined): boolean {
  return route !== undefined && route.gateway === undefined
}
