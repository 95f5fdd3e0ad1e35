/**
 * host-gw desired state (pure): one route per remote subnet via the peer's public IP on the
 * external interface — `ip route replace 10.5.3.0/24 via 192.168.1.3 dev eth0`, per family.
 */
import type { Family, IpAddr, IpNet } from '../../ip/ip.ts'
import type { Lease } from '../../lease/lease.ts'
import type { KernelEntry } from '../../kernel/apply.ts'
import type { Route } from '../../kernel/kernel.ts'
import { formatIp } from '../../ip/ip.ts'
import { leaseFamilies, publicIpOf, subnetOf } from '../lease-validation.ts'

/** The route for one family of a validated lease. */
export function hostGwRoute(subnet: IpNet, gateway: IpAddr, extIndex: number): Route {
  return { dst: subnet, gateway, index: extIndex }
}

/** Entries for a validated lease: one route per family it carries. */
export function hostGwEntries(lease: Lease, families: readonly Family[], extIndex: number): KernelEntry[] {
  return leaseFamilies(lease, families).map((family) => ({
    kind: 'route' as const,
    route: hostGwRoute(subnetOf(lease, family) as IpNet, publicIpOf(lease, family) as IpAddr, extIndex),
  }))
}

/** Why the kernel refused a route via `gateway`: the peer is not on-link on the external interface. */
export function notOnLinkReason(gateway: IpAddr, extName: string, errno: string): string {
  return `peer public IP ${formatIp(gateway)} is not on-link on ${extName} (the kernel refused the route: ${errno}); host-gw requires every host on one L2 network (use vxlan, or vxlan with DirectRouting)`
}
