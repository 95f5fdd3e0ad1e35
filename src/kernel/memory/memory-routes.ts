/**
 * Route-table rules of the Linux FIB, as pure functions over MemoryKernel's tables: identity
 * keys for replace, wildcard matching for delete, gateway reachability and longest-prefix lookup.
 */
import { netContainsIp, type IpAddr } from '../../ip/ip.ts'
import type { Route, RouteScope } from '../kernel.ts'

export const MAIN_TABLE = 254
export const LOCAL_TABLE = 255
/** IPv6 user routes default to metric 1024, kernel prefix routes to 256. */
export const IP6_USER_METRIC = 1024

/** Fills the defaults Linux reports back: table, type, scope, IPv6 metric, lo for IPv6 reject routes. */
export function normalizeRoute(route: Route, loIndex: number): Route {
  const type = route.type ?? 'unicast'
  const v6 = route.dst.family === 6
  const scope: RouteScope = v6 ? 'universe' : route.scope ?? defaultScope(route)
  const out: {
    -readonly [K in keyof Route]: Route[K]
  } = { dst: route.dst, table: route.table ?? MAIN_TABLE, type, scope }
  if (route.gateway) out.gateway = route.gateway
  if (route.index !== undefined) out.index = route.index
  else if (v6 && type !== 'unicast') out.index = loIndex
  if (route.onlink) out.onlink = true
  if (route.src) out.src = route.src
  const metric = v6 ? route.metric ?? (type === 'local' ? 0 : IP6_USER_METRIC) : route.metric
  if (metric !== undefined && (v6 || metric !== 0)) out.metric = metric
  return out
}

/** iproute2's rule: link scope for a unicast route without gateway, host for local, else universe. */
export function defaultScope(route: Route): RouteScope {
  const type = route.type ?? 'unicast'
  if (type === 'local') return 'host'
  if (type === 'unicast' && !route.gateway) return 'link'
  return 'universe'
}

/** Identity of a route for NLM_F_REPLACE: (table, dst, prefix, priority) — tos is always 0 here. */
export function routeKey(route: Route): string {
  return `${route.dst.family}|${route.table ?? MAIN_TABLE}|${route.dst.addr}|${route.dst.prefix}|${route.metric ?? 0}`
}

/** Delete matching: fields left undefined in the request are wildcards, as in fib_table_delete/ip6_route_del. */
export function routeMatches(stored: Route, req: Route): boolean {
  if (stored.dst.family !== req.dst.family || stored.dst.addr !== req.dst.addr || stored.dst.prefix !== req.dst.prefix) return false
  if ((stored.table ?? MAIN_TABLE) !== (req.table ?? MAIN_TABLE)) return false
  if (req.index !== undefined && stored.index !== req.index) return false
  if (req.gateway && (!stored.gateway || stored.gateway.value !== req.gateway.value)) return false
  if (req.metric !== undefined && (stored.metric ?? 0) !== req.metric) return false
  if (req.dst.family === 4 && req.type && stored.type !== req.type) return false
  return true
}

/** Longest-prefix match over the given tables in order (local before main), lowest metric on a tie. */
export function lookup(routes: Iterable<Route>, ip: IpAddr, tables: readonly number[], index?: number): Route | undefined {
  // One pass for all tables: thousands of peer routes make this the cost of every gateway check.
  const best: Array<Route | undefined> = tables.map(() => undefined)
  for (const r of routes) {
    const t = tables.indexOf(r.table ?? MAIN_TABLE)
    if (t < 0 || (index !== undefined && r.index !== index) || !netContainsIp(r.dst, ip)) continue
    const b = best[t]
    if (!b || r.dst.prefix > b.dst.prefix || (r.dst.prefix === b.dst.prefix && (r.metric ?? 0) < (b.metric ?? 0))) best[t] = r
  }
  return best.find((r) => r !== undefined)
}

/**
 * Gateway check without onlink (fib_check_nh_v4_gw / ip6_route_check_nh): the gateway must be
 * reached by a directly connected route (no gateway of its own), via `index` when one is given.
 * Returns the errno Linux answers, or undefined when reachable.
 */
export function checkGateway(routes: Iterable<Route>, gateway: IpAddr, index: number | undefined): string | undefined {
  const unreachable = gateway.family === 4 ? 'ENETUNREACH' : 'EHOSTUNREACH'
  // IPv6 link-local next hops are resolved on the given device only.
  if (gateway.family === 6 && gateway.value >> 118n === 0x3fan) return index === undefined ? 'EINVAL' : undefined
  const hit = lookup(routes, gateway, [LOCAL_TABLE, MAIN_TABLE], index)
  if (!hit || hit.gateway || (hit.type !== 'unicast' && hit.type !== 'local')) return unreachable
  if (gateway.family === 4 && hit.type === 'unicast' && hit.scope === 'universe') return unreachable
  return undefined
}
