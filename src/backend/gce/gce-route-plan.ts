/**
 * Pure decisions of the gce backend: the route name for a subnet, and what to do given the
 * route that exists (flannel: keep it when it already points at this instance, else replace).
 */
import type { IpNet } from '../../ip/ip.ts'
import { formatCidr } from '../../ip/ip.ts'
import type { GceRoute } from './compute-routes-api.ts'

/** GCE's default routes-per-project quota. */
export const GCE_ROUTE_LIMIT = 100

/** flannel's route priority (lower wins; 1000 is GCE's default). */
export const GCE_ROUTE_PRIORITY = 1000

/** `flannel-10-40-12-0-24` for 10.40.12.0/24 (flannel: `.` and `/` become `-`). */
export function gceRouteName(subnet: IpNet): string {
  return `flannel-${formatCidr(subnet).replace(/[./:]/g, '-')}`
}

/** The route this host wants for its subnet. */
export function desiredGceRoute(subnet: IpNet, networkSelfLink: string, instanceSelfLink: string): GceRoute {
  return {
    name: gceRouteName(subnet),
    destRange: formatCidr(subnet),
    network: networkSelfLink,
    nextHopInstance: instanceSelfLink,
    priority: GCE_ROUTE_PRIORITY,
  }
}

export type GceRoutePlan =
  | { readonly action: 'keep' }
  | { readonly action: 'create' }
  /** The name is taken by a route that points elsewhere: delete it, then create ours. */
  | { readonly action: 'replace'; readonly reason: string }

/**
 * Compares the existing route with the desired one. flannel compared only the next hop; a
 * route with our name but another range or network is equally wrong, so it is replaced too.
 */
export function planGceRoute(existing: GceRoute | undefined, desired: GceRoute): GceRoutePlan {
  if (existing === undefined) return { action: 'create' }
  if (!sameLink(existing.nextHopInstance, desired.nextHopInstance)) {
    return { action: 'replace', reason: `next hop is ${existing.nextHopInstance || 'not an instance'}` }
  }
  if (existing.destRange !== desired.destRange) return { action: 'replace', reason: `destination is ${existing.destRange}` }
  if (!sameLink(existing.network, desired.network)) return { action: 'replace', reason: `network is ${existing.network}` }
  return { action: 'keep' }
}

/**
 * Self links may come back with either API host (`www.googleapis.com/compute/v1/...` or
 * `compute.googleapis.com/compute/v1/...`); compare from `projects/` on.
 */
export function sameLink(a: string, b: string): boolean {
  return linkPath(a) === linkPath(b)
}

function linkPath(link: string): string {
  const i = link.indexOf('projects/')
  return i < 0 ? link : link.slice(i)
}
