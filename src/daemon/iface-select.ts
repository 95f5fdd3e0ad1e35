/**
 * External interface selection: port of flannel's main.go loop over pkg/ipmatch LookupExtIface
 * (reference §6.0). `chooseExternalInterface` is pure over a snapshot of links, addresses and
 * routes; `selectExternalInterface` reads that snapshot through the Kernel interface.
 *
 * Order, as flanneld: with none of --iface/--iface-regex/--iface-can-reach, the interface that
 * owns --public-ip (or --public-ipv6), else the default-route interface (both families on the
 * same interface for dual stack). Otherwise each --iface (an IP or a name) in order, then each
 * --iface-regex (addresses first, then names), then --iface-can-reach; the first that works wins.
 *
 * Improvements over flannel, on purpose: a family's address missing after the match is filled
 * from that interface (flannel leaves it empty for dual stack with --iface=<IPv4>), and the error
 * lists every attempt with its reason instead of only the last one.
 */
import { WeftError } from '../errors.ts'
import { formatIp, ipEqual, parseIp, type Family, type IpAddr } from '../ip/ip.ts'
import type { ExternalInterface } from '../backend/backend.ts'
import type { Addr, Kernel, Link, Route } from '../kernel/kernel.ts'
import type { Logger } from '../log/logger.ts'

export interface IfaceRequest {
  /** --iface values: an IP address or an interface name, tried in order. */
  readonly iface: readonly string[]
  /** --iface-regex values, tried after every --iface. */
  readonly ifaceRegex: readonly string[]
  readonly ifaceCanReach?: IpAddr
  readonly publicIp?: IpAddr
  readonly publicIpv6?: IpAddr
  /** Enabled IP families (from EnableIPv4/EnableIPv6), at least one. */
  readonly families: readonly Family[]
}

/** What the selection reads from the kernel. */
export interface NetSnapshot {
  readonly links: readonly Link[]
  readonly addrs: readonly Addr[]
  /** Default routes (0.0.0.0/0, ::/0) of the main table; needed only for the default path. */
  readonly defaultRoutes?: readonly Route[]
  /** `ip route get <--iface-can-reach>` result, or the error text. */
  readonly canReach?: Route | { readonly error: string }
}

export interface IfaceSelection {
  readonly iface: ExternalInterface
  /** How it was found, e.g. `--iface eth1` or `default route`. */
  readonly via: string
  /** Attempts that failed before this one, as `what: reason`. */
  readonly skipped: readonly string[]
}

interface Candidate { readonly link: Link; readonly addr: Partial<Record<Family, IpAddr>> }
type Attempt = Candidate | string

/** Pure selection; throws WeftError IFACE_NOT_FOUND listing what was tried. */
export function chooseExternalInterface(snap: NetSnapshot, req: IfaceRequest): IfaceSelection {
  const attempts: Array<{ via: string; run: () => Attempt }> = []
  const explicit = req.iface.length > 0 || req.ifaceRegex.length > 0 || req.ifaceCanReach !== undefined
  if (!explicit) {
    const owned = req.publicIp ?? req.publicIpv6
    if (owned) attempts.push({ via: `interface holding public IP ${formatIp(owned)}`, run: () => byIpOrName(snap, formatIp(owned)) })
    else attempts.push({ via: 'default route', run: () => byDefaultRoute(snap, req.families) })
  } else {
    for (const name of req.iface) attempts.push({ via: `--iface ${name}`, run: () => byIpOrName(snap, name) })
    for (const re of req.ifaceRegex) attempts.push({ via: `--iface-regex ${re}`, run: () => byRegex(snap, re, req.families) })
    const reach = req.ifaceCanReach
    if (reach) attempts.push({ via: `--iface-can-reach ${formatIp(reach)}`, run: () => byCanReach(snap, reach) })
  }
  const skipped: string[] = []
  for (const { via, run } of attempts) {
    const found = run()
    const done = typeof found === 'string' ? found : complete(snap, found, req)
    if (typeof done !== 'string') return { iface: done, via, skipped }
    skipped.push(`${via}: ${done}`)
  }
  const what = explicit ? 'failed to find interface to use that matches the interfaces and/or regexes provided' : 'failed to find any valid interface to use'
  throw new WeftError('IFACE_NOT_FOUND', `${what}: ${skipped.join('; ')}`, { details: { tried: skipped.length } })
}

/** Reads links, addresses and (when needed) routes, then chooses; logs skipped attempts. */
export async function selectExternalInterface(kernel: Kernel, req: IfaceRequest, logger?: Logger): Promise<IfaceSelection> {
  const [links, addrs4, addrs6] = await Promise.all([kernel.listLinks(), kernel.listAddrs(4), kernel.listAddrs(6)])
  const explicit = req.iface.length > 0 || req.ifaceRegex.length > 0 || req.ifaceCanReach !== undefined
  let defaultRoutes: Route[] | undefined
  if (!explicit && !req.publicIp && !req.publicIpv6) {
    const lists = await Promise.all(req.families.map((family) => kernel.listRoutes({ family, dst: { family, addr: 0n, prefix: 0 } })))
    defaultRoutes = lists.flat()
  }
  let canReach: NetSnapshot['canReach']
  if (req.ifaceCanReach) {
    canReach = await kernel.routeGet(req.ifaceCanReach).catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }))
  }
  const selection = chooseExternalInterface({ links, addrs: [...addrs4, ...addrs6], ...(defaultRoutes ? { defaultRoutes } : {}), ...(canReach ? { canReach } : {}) }, req)
  const log = logger?.child({ component: 'iface-select' })
  for (const s of selection.skipped) log?.info('could not find valid interface', { attempt: s })
  const { iface } = selection
  log?.info('using interface', {
    name: iface.name, via: selection.via, mtu: iface.mtu,
    address: iface.ifaceAddr && formatIp(iface.ifaceAddr), v6Address: iface.ifaceV6Addr && formatIp(iface.ifaceV6Addr),
    publicIP: iface.extAddr && formatIp(iface.extAddr), publicIPv6: iface.extV6Addr && formatIp(iface.extV6Addr),
  })
  return selection
}

function byIpOrName(snap: NetSnapshot, text: string): Attempt {
  const ip = parseIp(text) // net.ParseIP first; names never parse as addresses
  if (ip) {
    const owner = snap.addrs.find((a) => ipEqual(a.ip, ip))
    const link = owner && snap.links.find((l) => l.index === owner.index)
    if (!link) return `no interface has address ${formatIp(ip)}`
    return { link, addr: { [ip.family]: ip } }
  }
  const link = snap.links.find((l) => l.name === text)
  return link ? { link, addr: {} } : `no interface named ${text} (available: ${snap.links.map((l) => l.name).join(', ')})`
}

function byRegex(snap: NetSnapshot, pattern: string, families: readonly Family[]): Attempt {
  let re: RegExp
  try { re = new RegExp(pattern) } catch (err) { return `could not compile the regex: ${(err as Error).message}` }
  // Addresses first: a link qualifies when every enabled family has a matching address.
  for (const link of snap.links) {
    const addr: Partial<Record<Family, IpAddr>> = {}
    for (const f of families) {
      const hit = usableAddrs(snap, link.index, f).find((ip) => re.test(formatIp(ip)))
      if (hit) addr[f] = hit
    }
    if (families.every((f) => addr[f])) return { link, addr }
  }
  const byName = snap.links.find((l) => re.test(l.name))
  if (byName) return { link: byName, addr: {} }
  const available = snap.links.map((l) => `${l.name}: [${families.flatMap((f) => usableAddrs(snap, l.index, f).map(formatIp)).join(' ')}]`)
  return `could not match pattern ${pattern} to any of the available network interfaces (${available.join(', ')})`
}

function byCanReach(snap: NetSnapshot, target: IpAddr): Attempt {
  const route = snap.canReach
  if (!route) return 'no route lookup was made'
  if ('error' in route) return `failed to get a route to ${formatIp(target)}: ${route.error}`
  const link = route.index === undefined ? undefined : snap.links.find((l) => l.index === route.index)
  if (!link) return `the route to ${formatIp(target)} names no interface`
  return { link, addr: route.src ? { [route.src.family]: route.src } : {} }
}

function byDefaultRoute(snap: NetSnapshot, families: readonly Family[]): Attempt {
  let chosen: Link | undefined
  for (const f of families) {
    const routes = (snap.defaultRoutes ?? [])
      .filter((r) => r.dst.family === f && r.dst.prefix === 0 && (r.type ?? 'unicast') === 'unicast' && (r.table ?? 254) === 254)
      .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))
    if (routes.length === 0) return `unable to find ${f === 6 ? 'IPv6 ' : ''}default route`
    const route = routes.find((r) => r.index !== undefined)
    const link = route && snap.links.find((l) => l.index === route.index)
    if (!link) return `found ${f === 6 ? 'IPv6 ' : ''}default route but could not determine interface`
    if (chosen && chosen.index !== link.index) {
      return `v6 default route interface ${link.name} must be the same with v4 default route interface ${chosen.name}`
    }
    chosen = link
  }
  return chosen ? { link: chosen, addr: {} } : 'no IP family enabled'
}

/** Fills each enabled family's address, checks the MTU, applies --public-ip(v6). */
function complete(snap: NetSnapshot, c: Candidate, req: IfaceRequest): ExternalInterface | string {
  if (!c.link.mtu) return `failed to determine MTU for interface ${c.link.name}`
  const out: { -readonly [K in keyof ExternalInterface]: ExternalInterface[K] } = { name: c.link.name, index: c.link.index, mtu: c.link.mtu }
  for (const f of req.families) {
    const addr = c.addr[f] ?? usableAddrs(snap, c.link.index, f)[0]
    if (!addr) return `failed to find IPv${f} address for interface ${c.link.name}`
    const ext = f === 4 ? req.publicIp : req.publicIpv6
    if (f === 4) { out.ifaceAddr = addr; out.extAddr = ext ?? addr } else { out.ifaceV6Addr = addr; out.extV6Addr = ext ?? addr }
  }
  return Object.freeze(out)
}

const SCOPE_RANK: Readonly<Record<string, number>> = { universe: 0, link: 1, host: 2 }

/** The link's addresses of one family, global scope before link-local; multicast/unspecified skipped. */
function usableAddrs(snap: NetSnapshot, index: number, family: Family): IpAddr[] {
  return snap.addrs
    .filter((a) => a.index === index && a.ip.family === family && a.ip.value !== 0n && !isMulticast(a.ip))
    .map((a, i) => ({ a, i, rank: SCOPE_RANK[a.scope ?? inferScope(a.ip)] ?? 0 }))
    .sort((x, y) => x.rank - y.rank || x.i - y.i)
    .map((x) => x.a.ip)
}

function inferScope(ip: IpAddr): string {
  if (ip.family === 4) return ip.value >> 24n === 127n ? 'host' : 'universe'
  if (ip.value === 1n) return 'host'
  return ip.value >> 118n === 0x3fan ? 'link' : 'universe' // fe80::/10
}

function isMulticast(ip: IpAddr): boolean {
  return ip.family === 4 ? ip.value >> 28n === 0xen : ip.value >> 120n === 0xffn
}
