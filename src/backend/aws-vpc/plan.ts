/**
 * Pure planner for one route table: given what EC2 reports, the cluster network, this host's
 * subnet and its ENI, return the changes to make. No I/O, no logging (design.md §4.1).
 */
import { formatCidr, netContainsNet, netEqual, parseCidr } from '../../ip/ip.ts'
import type { IpNet } from '../../ip/ip.ts'
import type { RouteOp, RouteTable, TableRoute } from './route-table-api.ts'

export interface PlanInput {
  readonly table: RouteTable
  /** The cluster Network (IPv4). */
  readonly network: IpNet
  /** This host's lease subnet. */
  readonly subnet: IpNet
  /** The ENI that holds the interface address: the route's target. */
  readonly eniId: string
}

export interface RoutePlan {
  /** Blackhole routes inside the network (not our own subnet's), to delete first. */
  readonly deletes: readonly RouteOp[]
  /** Create or replace our own route; undefined when the existing route is already correct. */
  readonly upsert?: RouteOp
  /** Why the upsert is needed (for the log), or 'correct' when there is none. */
  readonly reason: 'missing' | 'blackhole' | 'other-target' | 'correct'
  /** Routes counted against the table's quota after the deletes, before the upsert. */
  readonly countAfterDeletes: number
}

/**
 * Unlike flannel (which always deleted and recreated the host's route, and its pointer
 * comparison never matched), an active route to our ENI is left alone, and a route with the
 * wrong target is fixed with one ReplaceRoute: no window without a route.
 */
export function planRouteTable(input: PlanInput): RoutePlan {
  const { table, network, subnet, eniId } = input
  const own = table.routes.find((r) => netEqual(parseCidr(r.destination), subnet))
  const deletes: RouteOp[] = []
  for (const route of table.routes) {
    if (route === own || route.state !== 'blackhole') continue
    const dest = parseCidr(route.destination)
    if (dest !== undefined && netContainsNet(network, dest)) {
      deletes.push({ kind: 'delete', tableId: table.id, destination: route.destination })
    }
  }
  const countAfterDeletes = countQuotaRoutes(table) - deletes.length
  const destination = formatCidr(subnet)
  if (own === undefined) {
    return { deletes, upsert: { kind: 'create', tableId: table.id, destination, eniId }, reason: 'missing', countAfterDeletes }
  }
  if (own.state === 'active' && own.eniId === eniId) return { deletes, reason: 'correct', countAfterDeletes }
  return {
    deletes,
    // Replace keeps the destination string EC2 stored, so the call matches the existing route.
    upsert: { kind: 'replace', tableId: table.id, destination: own.destination, eniId },
    reason: own.state === 'blackhole' ? 'blackhole' : 'other-target',
    countAfterDeletes,
  }
}

/** Routes that count against the per-table quota: everything but the local and propagated ones. */
export function countQuotaRoutes(table: RouteTable): number {
  return table.routes.filter(isQuotaRoute).length + table.otherRouteCount
}

function isQuotaRoute(route: TableRoute): boolean {
  return route.origin !== 'CreateRouteTable' && route.origin !== 'EnableVgwRoutePropagation'
}
