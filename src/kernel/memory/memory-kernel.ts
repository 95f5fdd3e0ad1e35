/**
 * MemoryKernel: the in-memory twin of LinuxKernel for unit tests. It keeps per-instance tables,
 * an append-only ops log, `failNext()` fault injection and `snapshot()` for deep-equal asserts,
 * and it answers with the errno Linux answers (checked by test/compliance/kernel-contract.ts):
 *
 * - links: EEXIST on a duplicate name or a second vxlan with the same VNI/port/family; ENODEV for
 *   an unknown index; new links are down; deleting one removes its addresses, routes, neighbours, FDB.
 * - addresses: ENODEV for an unknown link; EADDRNOTAVAIL on delete of a missing one. IPv4
 *   addresses add a connected route while the link is up; IPv6 ones a metric-256 prefix route.
 * - routes: ENODEV for an unknown device, ENETDOWN for a down one, ENETUNREACH (IPv6:
 *   EHOSTUNREACH) for a gateway without a connected route unless onlink, ESRCH on delete of a
 *   missing route. Setting a link down flushes its routes (and its IPv6 addresses).
 * - neighbours: ENOENT on delete of a missing entry. FDB: vxlan devices only, EAFNOSUPPORT when
 *   the dst family differs from the device's, `append` adds a dst only for all-zero/multicast MACs,
 *   deleting with a dst that does not match an existing MAC is a silent no-op (as vxlan does).
 *
 * Not modelled: IPv6 link-local autoconfiguration and DAD, broadcast/multicast routes, policy rules.
 */
import { formatIp, ipEqual, netIp, netMask, type Family, type IpAddr } from '../../ip/ip.ts'
import { describeAddr, describeFdb, describeLink, describeNeigh, describeRoute, normalizeMac } from '../describe.ts'
import { KernelError } from '../kernel-error.ts'
import type {
  Addr, FdbEntry, Kernel, KernelEvent, KernelEventKind, Link, Neigh, Route, RouteFilter, TunDevice, TunSpec, VxlanSpec,
  IpipSpec, WireGuardChange, WireGuardImpl, WireGuardSpec, WireGuardState,
} from '../kernel.ts'
import { MemoryWireGuard } from './memory-wireguard.ts'
import { MemoryFdb } from './memory-fdb.ts'
import { checkGateway, lookup, LOCAL_TABLE, MAIN_TABLE, normalizeRoute, routeKey, routeMatches } from './memory-routes.ts'

export type KernelOpName = Exclude<keyof Kernel, 'close'>

/** One entry of the ops log: the method, its arguments, and the errno when it failed. */
export interface KernelOp {
  readonly op: KernelOpName
  readonly args: readonly unknown[]
  readonly errno?: string
}

export interface MemoryKernelSnapshot {
  readonly links: Link[]
  readonly addrs: Addr[]
  readonly routes: Route[]
  readonly neighs: Neigh[]
  readonly fdb: FdbEntry[]
  readonly sysctls: Record<string, string>
  /** WireGuard devices' state by link name. */
  readonly wireguard: Record<string, WireGuardState>
}

const LO = 1
const VXLAN_DEFAULT_PORT = 8472
const fam = (ip: IpAddr): Family => ip.family

export class MemoryKernel implements Kernel {
  private readonly opsLog: KernelOp[] = []
  private readonly faults = new Map<KernelOpName, string[]>()
  private readonly links = new Map<number, Link>()
  private addrs: Addr[] = []
  private readonly routes = new Map<string, Route>()
  private readonly neighs = new Map<string, Neigh>()
  private readonly fdb = new MemoryFdb()
  private readonly sysctls = new Map<string, string>()
  private readonly wg = new Map<number, MemoryWireGuard>()
  private readonly listeners = new Set<{ kinds: ReadonlySet<KernelEventKind>; fn: (e: KernelEvent) => void }>()
  private nextIndex = 2
  private macCounter = 0

  constructor() {
    this.links.set(LO, { index: LO, name: 'lo', mtu: 65536, mac: '00:00:00:00:00:00', up: false })
  }

  /** Every call so far, in order (append-only). */
  get ops(): readonly KernelOp[] {
    return this.opsLog
  }

  /** Calls of one method. */
  calls(op: KernelOpName): KernelOp[] {
    return this.opsLog.filter((o) => o.op === op)
  }

  /** The next `times` calls of `op` fail with `errno` (KernelError) without touching the tables. */
  failNext(op: KernelOpName, errno: string, times = 1): void {
    const queue = this.faults.get(op) ?? []
    for (let i = 0; i < times; i++) queue.push(errno)
    this.faults.set(op, queue)
  }

  /** Deep copy of all tables in a stable order, for deep-equal assertions. */
  snapshot(): MemoryKernelSnapshot {
    const byKey = <T>(items: T[], key: (t: T) => string): T[] => items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
    return structuredClone({
      links: [...this.links.values()].sort((a, b) => a.index - b.index),
      addrs: byKey([...this.addrs], (a) => `${a.index}|${a.ip.family}|${a.ip.value.toString(16).padStart(32, '0')}`),
      routes: byKey([...this.routes.values()], (r) => routeKey(r)),
      neighs: byKey([...this.neighs.values()], (n) => `${n.index}|${n.ip.family}|${n.ip.value.toString(16).padStart(32, '0')}`),
      fdb: this.fdb.entries(),
      sysctls: Object.fromEntries([...this.sysctls].sort()),
      wireguard: Object.fromEntries([...this.wg].map(([i, w]) => [this.links.get(i)?.name ?? String(i), w.state()]).sort()),
    })
  }

  // ---- links -------------------------------------------------------------------------------

  getLink(name: string): Promise<Link | undefined> {
    return this.run('getLink', [name], () => [...this.links.values()].find((l) => l.name === name))
  }

  getLinkByIndex(index: number): Promise<Link | undefined> {
    return this.run('getLinkByIndex', [index], () => this.links.get(index))
  }

  listLinks(): Promise<Link[]> {
    return this.run('listLinks', [], () => [...this.links.values()].sort((a, b) => a.index - b.index))
  }

  createVxlan(spec: VxlanSpec): Promise<Link> {
    return this.run('createVxlan', [spec], () => {
      const fail = (errno: string): never => { throw new KernelError('create', `vxlan ${spec.name} id ${spec.vni}`, errno) }
      if (spec.name === '' || spec.name.length > 15) fail('EINVAL')
      if (this.linkByName(spec.name)) fail('EEXIST')
      const parent = spec.parentIndex ? this.links.get(spec.parentIndex) : undefined
      if (spec.parentIndex && !parent) fail('ENODEV')
      const port = spec.port || VXLAN_DEFAULT_PORT
      const family: Family = spec.local?.family ?? 4
      for (const l of this.links.values()) {
        const v = l.vxlan
        if (v && v.vni === spec.vni && v.port === port && (v.local?.family ?? 4) === family && v.gbp === spec.gbp) fail('EEXIST')
      }
      const mac = spec.mac === undefined ? this.randomMac() : normalizeMac(spec.mac) ?? fail('EINVAL')
      const headroom = family === 6 ? 70 : 50
      const link: Link = {
        index: this.nextIndex++, name: spec.name, kind: 'vxlan', mac, up: false,
        mtu: spec.mtu ?? (parent ? Math.min(parent.mtu, 65535) - headroom : 1500),
        vxlan: {
          vni: spec.vni, port, learning: spec.learning, gbp: spec.gbp,
          ...(spec.local ? { local: spec.local } : {}),
          ...(spec.parentIndex ? { parentIndex: spec.parentIndex } : {}),
        },
      }
      this.links.set(link.index, link)
      this.emit({ kind: 'link', action: 'new', link })
      return link
    })
  }

  /** An `ipip` link; `withoutIpip()` makes it fail with EOPNOTSUPP, as a kernel without the module. */
  createIpip(spec: IpipSpec): Promise<Link> {
    return this.run('createIpip', [spec], () => {
      const fail = (errno: string): never => { throw new KernelError('create', `ipip ${spec.name}`, errno) }
      if (!this.ipipModule) fail('EOPNOTSUPP')
      if (spec.name === '' || spec.name.length > 15) fail('EINVAL')
      if (this.linkByName(spec.name)) fail('EEXIST')
      const link: Link = {
        index: this.nextIndex++, name: spec.name, kind: 'ipip', up: false, mtu: spec.mtu ?? 1480,
        ipip: { ...(spec.local ? { local: spec.local } : {}), ...(spec.remote ? { remote: spec.remote } : {}) },
      }
      this.links.set(link.index, link)
      this.emit({ kind: 'link', action: 'new', link })
      return link
    })
  }

  private ipipModule = true
  /** Behave as a kernel without CONFIG_NET_IPIP. */
  withoutIpip(): this {
    this.ipipModule = false
    return this
  }

  /** Creates a `tun` link; the fds are placeholders (-1) since nothing real is opened. */
  openTun(spec: TunSpec): Promise<TunDevice> {
    return this.run('openTun', [spec], () => {
      let link = this.linkByName(spec.name)
      if (link && link.kind !== 'tun') throw new KernelError('open', `tun ${spec.name}`, 'EINVAL')
      if (!link) {
        link = { index: this.nextIndex++, name: spec.name, kind: 'tun', mtu: 1500, up: false }
        this.links.set(link.index, link)
        this.emit({ kind: 'link', action: 'new', link })
      }
      const index = link.index
      const queues = spec.multiQueue ? Math.max(1, spec.queues ?? 1) : 1
      let open = true
      return {
        name: spec.name, index, fds: new Array<number>(queues).fill(-1),
        close: () => {
          if (open && this.links.has(index)) this.removeLink(index)
          open = false
        },
      }
    }, false)
  }

  /** A `wireguard` link (the kernel module's kind; no MAC, as a real one). */
  createWireGuard(spec: WireGuardSpec): Promise<{ link: Link; impl: WireGuardImpl }> {
    return this.run('createWireGuard', [spec], () => {
      if (spec.name === '' || spec.name.length > 15) throw new KernelError('create', `wireguard ${spec.name}`, 'EINVAL')
      if (this.linkByName(spec.name)) throw new KernelError('create', `wireguard ${spec.name}`, 'EEXIST')
      const link: Link = { index: this.nextIndex++, name: spec.name, kind: 'wireguard', mtu: spec.mtu, up: false }
      this.links.set(link.index, link)
      this.wg.set(link.index, new MemoryWireGuard())
      this.emit({ kind: 'link', action: 'new', link })
      return { link, impl: 'kernel' as const }
    })
  }

  configureWireGuard(name: string, change: WireGuardChange): Promise<void> {
    return this.run('configureWireGuard', [name, change], () => this.wgByName(name, 'configure').apply(change))
  }

  getWireGuard(name: string): Promise<WireGuardState | undefined> {
    return this.run('getWireGuard', [name], () => {
      const link = this.linkByName(name)
      return link ? this.wg.get(link.index)?.state() : undefined
    })
  }

  private wgByName(name: string, op: string): MemoryWireGuard {
    const link = this.linkByName(name)
    const dev = link && this.wg.get(link.index)
    if (!dev) throw new KernelError(op, `wireguard ${name}`, 'ENODEV')
    return dev
  }

  setLink(index: number, change: { up?: boolean; mtu?: number; mac?: string }): Promise<void> {
    return this.run('setLink', [index, change], () => {
      const link = this.links.get(index)
      const fail = (errno: string): never => { throw new KernelError('set', describeLink(index, this.nameOf), errno) }
      if (!link) return fail('ENODEV')
      if (change.mtu !== undefined && (change.mtu < 68 || change.mtu > 65535) && link.name !== 'lo') fail('EINVAL')
      const mac = change.mac === undefined ? link.mac : normalizeMac(change.mac) ?? fail('EINVAL')
      const next: Link = { ...link, mtu: change.mtu ?? link.mtu, up: change.up ?? link.up, ...(mac ? { mac } : {}) }
      this.links.set(index, next)
      if (next.up && !link.up) this.linkUp(next)
      if (!next.up && link.up) this.linkDown(next)
      this.emit({ kind: 'link', action: 'new', link: next })
    })
  }

  deleteLink(index: number): Promise<void> {
    return this.run('deleteLink', [index], () => {
      if (!this.links.has(index)) throw new KernelError('delete', describeLink(index, this.nameOf), 'ENODEV')
      if (index === LO) throw new KernelError('delete', describeLink(index, this.nameOf), 'EOPNOTSUPP')
      this.removeLink(index)
    })
  }

  // ---- addresses ---------------------------------------------------------------------------

  replaceAddr(addr: Addr): Promise<void> {
    return this.run('replaceAddr', [addr], () => {
      const link = this.requireLink(addr.index, 'replace', describeAddr(addr, this.nameOf))
      const stored: Addr = { index: addr.index, ip: addr.ip, prefix: addr.prefix, scope: addrScope(addr) }
      const i = this.addrs.findIndex((a) => sameAddr(a, addr))
      if (i >= 0) this.addrs[i] = stored
      else this.addrs.push(stored)
      this.emit({ kind: 'addr', action: 'new', addr: stored })
      if (i < 0 && (link.up || addr.ip.family === 6)) this.addConnected(stored)
    })
  }

  deleteAddr(addr: Addr): Promise<void> {
    return this.run('deleteAddr', [addr], () => {
      this.requireLink(addr.index, 'delete', describeAddr(addr, this.nameOf))
      const found = this.addrs.find((a) => sameAddr(a, addr))
      if (!found) throw new KernelError('delete', describeAddr(addr, this.nameOf), 'EADDRNOTAVAIL')
      this.removeAddr(found)
    })
  }

  listAddrs(family: Family, index?: number): Promise<Addr[]> {
    return this.run('listAddrs', [family, index], () =>
      this.addrs.filter((a) => a.ip.family === family && (index === undefined || a.index === index)))
  }

  // ---- routes ------------------------------------------------------------------------------

  replaceRoute(route: Route): Promise<void> {
    return this.run('replaceRoute', [route], () => {
      const fail = (errno: string): never => { throw new KernelError('replace', describeRoute(route, this.nameOf), errno) }
      const type = route.type ?? 'unicast'
      if (route.gateway && route.gateway.family !== route.dst.family) fail('EINVAL')
      if (route.index !== undefined) {
        const link = this.links.get(route.index) ?? fail('ENODEV')
        if (type === 'unicast' && !link.up) fail('ENETDOWN')
      } else if (type === 'unicast' && !route.gateway) fail('ENODEV')
      if (type === 'unicast' && route.gateway) {
        if (route.onlink && route.index === undefined) fail('EINVAL')
        if (!route.onlink) {
          const errno = checkGateway(this.routes.values(), route.gateway, route.index)
          if (errno) fail(errno)
        }
      }
      if (route.src && !this.addrs.some((a) => ipEqual(a.ip, route.src))) fail('EINVAL')
      const stored = normalizeRoute(this.withGatewayDev(route), LO)
      this.putRoute(stored)
    })
  }

  deleteRoute(route: Route): Promise<void> {
    return this.run('deleteRoute', [route], () => {
      const found = [...this.routes.values()].find((r) => routeMatches(r, route))
      if (!found) throw new KernelError('delete', describeRoute(route, this.nameOf), 'ESRCH')
      this.dropRoute(found)
    })
  }

  listRoutes(filter: RouteFilter): Promise<Route[]> {
    return this.run('listRoutes', [filter], () => {
      const table = filter.table ?? MAIN_TABLE
      return [...this.routes.values()].filter((r) =>
        r.dst.family === filter.family &&
        (table === 0 || r.table === table) &&
        (filter.index === undefined || r.index === filter.index) &&
        (filter.type === undefined || r.type === filter.type) &&
        (filter.dst === undefined || (r.dst.addr === filter.dst.addr && r.dst.prefix === filter.dst.prefix)))
    })
  }

  routeGet(dst: IpAddr): Promise<Route> {
    return this.run('routeGet', [dst], () => {
      const hit = lookup(this.routes.values(), dst, [LOCAL_TABLE, MAIN_TABLE])
      const fail = (errno: string): never => { throw new KernelError('get', `route to ${formatIp(dst)}`, errno) }
      if (!hit) return fail('ENETUNREACH')
      if (hit.type === 'blackhole' && dst.family === 4) fail('EINVAL')
      if (hit.type === 'unreachable') fail('EHOSTUNREACH')
      const bits = dst.family === 4 ? 32 : 128
      const index = hit.type === 'local' ? LO : hit.index
      return {
        dst: { family: dst.family, addr: dst.value, prefix: bits }, table: hit.table, type: hit.type,
        ...(hit.gateway ? { gateway: hit.gateway } : {}), ...(index !== undefined ? { index } : {}),
      }
    })
  }

  // ---- neighbours and FDB ------------------------------------------------------------------

  replaceNeigh(neigh: Neigh): Promise<void> {
    return this.run('replaceNeigh', [neigh], () => {
      this.requireLink(neigh.index, 'replace', describeNeigh(neigh, this.nameOf))
      const mac = neigh.mac === undefined ? undefined : normalizeMac(neigh.mac)
      if (neigh.mac !== undefined && !mac) throw new KernelError('replace', describeNeigh(neigh, this.nameOf), 'EINVAL')
      const stored: Neigh = { index: neigh.index, ip: neigh.ip, state: neigh.state ?? 'permanent', ...(mac ? { mac } : {}) }
      this.neighs.set(neighKey(neigh), stored)
      this.emit({ kind: 'neigh', action: 'new', neigh: stored })
    })
  }

  deleteNeigh(neigh: Neigh): Promise<void> {
    return this.run('deleteNeigh', [neigh], () => {
      this.requireLink(neigh.index, 'delete', describeNeigh(neigh, this.nameOf))
      const found = this.neighs.get(neighKey(neigh))
      if (!found) throw new KernelError('delete', describeNeigh(neigh, this.nameOf), 'ENOENT')
      this.neighs.delete(neighKey(neigh))
      this.emit({ kind: 'neigh', action: 'del', neigh: found })
    })
  }

  listNeighs(family: Family, index?: number): Promise<Neigh[]> {
    return this.run('listNeighs', [family, index], () =>
      [...this.neighs.values()].filter((n) => n.ip.family === family && (index === undefined || n.index === index)))
  }

  replaceFdb(entry: FdbEntry): Promise<void> {
    return this.run('replaceFdb', [entry], () => this.updateFdb(entry, 'replace'))
  }

  appendFdb(entry: FdbEntry): Promise<void> {
    return this.run('appendFdb', [entry], () => this.updateFdb(entry, 'append'))
  }

  deleteFdb(entry: FdbEntry): Promise<void> {
    return this.run('deleteFdb', [entry], () => {
      const what = describeFdb(entry, this.nameOf)
      this.requireLink(entry.index, 'delete', what)
      for (const fdb of this.fdb.delete(entry, what)) this.emit({ kind: 'fdb', action: 'del', fdb })
    })
  }

  listFdb(index?: number): Promise<FdbEntry[]> {
    return this.run('listFdb', [index], () => this.fdb.entries().filter((e) => index === undefined || e.index === index))
  }

  // ---- sysctl and notifications ------------------------------------------------------------

  setSysctl(path: string, value: string): Promise<void> {
    return this.run('setSysctl', [path, value], () => {
      const dev = /^net\/ipv[46]\/(?:conf|neigh)\/([^/]+)\//.exec(path)?.[1]
      if (dev && dev !== 'all' && dev !== 'default' && !this.linkByName(dev)) throw new KernelError('set', `sysctl ${path}`, 'ENOENT')
      this.sysctls.set(path, value)
    })
  }

  getSysctl(path: string): Promise<string | undefined> {
    return this.run('getSysctl', [path], () => this.sysctls.get(path))
  }

  /** Resolves once subscribed; events are delivered asynchronously until `signal` aborts. */
  subscribe(kinds: readonly KernelEventKind[], onEvent: (event: KernelEvent) => void, signal: AbortSignal): Promise<void> {
    return this.run('subscribe', [kinds], () => {
      if (signal.aborted) return
      const listener = { kinds: new Set(kinds), fn: onEvent }
      this.listeners.add(listener)
      signal.addEventListener('abort', () => this.listeners.delete(listener), { once: true })
    })
  }

  close(): void {
    this.listeners.clear()
  }

  // ---- internals ---------------------------------------------------------------------------

  private readonly nameOf = (index: number): string | undefined => this.links.get(index)?.name

  private run<T>(op: KernelOpName, args: unknown[], body: () => T, copy = true): Promise<T> {
    const fault = this.faults.get(op)?.shift()
    try {
      if (fault) throw new KernelError(op, 'injected fault', fault)
      const result = body()
      this.opsLog.push({ op, args: structuredClone(args) })
      return Promise.resolve(copy ? structuredClone(result) : result)
    } catch (err) {
      this.opsLog.push({ op, args: structuredClone(args), errno: err instanceof KernelError ? err.errno : 'EUNKNOWN' })
      return Promise.reject(err)
    }
  }

  private emit(event: KernelEvent): void {
    const copy = structuredClone(event)
    for (const l of this.listeners) {
      if (l.kinds.has(event.kind)) queueMicrotask(() => l.fn(copy))
    }
  }

  private updateFdb(entry: FdbEntry, mode: 'replace' | 'append'): void {
    const what = describeFdb(entry, this.nameOf)
    const link = this.requireLink(entry.index, mode, what)
    const added = this.fdb.update(entry, mode, link, what)
    if (added) this.emit({ kind: 'fdb', action: 'new', fdb: added })
  }

  private linkByName(name: string): Link | undefined {
    return [...this.links.values()].find((l) => l.name === name)
  }

  private requireLink(index: number, op: string, what: string): Link {
    const link = this.links.get(index)
    if (!link) throw new KernelError(op, what, 'ENODEV')
    return link
  }

  private randomMac(): string {
    // Deterministic per instance, locally administered unicast (byte0 & 0xfe | 0x02), as flannel does.
    const n = ++this.macCounter
    return ['0e', 'a0', (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff, 0x01]
      .map((b) => (typeof b === 'string' ? b : b.toString(16).padStart(2, '0'))).join(':')
  }

  private withGatewayDev(route: Route): Route {
    if (route.index !== undefined || !route.gateway || (route.type ?? 'unicast') !== 'unicast') return route
    // Linux resolves the output device of a gateway route from the connected route.
    const hit = lookup(this.routes.values(), route.gateway, [MAIN_TABLE])
    return hit?.index === undefined ? route : { ...route, index: hit.index }
  }

  private putRoute(route: Route): void {
    const key = routeKey(route)
    const old = this.routes.get(key)
    if (old) this.emit({ kind: 'route', action: 'del', route: old })
    this.routes.set(key, route)
    this.emit({ kind: 'route', action: 'new', route })
  }

  private dropRoute(route: Route): void {
    this.routes.delete(routeKey(route))
    this.emit({ kind: 'route', action: 'del', route })
  }

  private addConnected(addr: Addr): void {
    const f = addr.ip.family
    const bits = f === 4 ? 32 : 128
    const host = { family: f, addr: addr.ip.value, prefix: bits }
    this.putRoute(normalizeRoute({ dst: host, index: addr.index, type: 'local', table: LOCAL_TABLE, ...(f === 4 ? { src: addr.ip } : {}) }, LO))
    if (addr.prefix >= bits) return
    const dst = { family: f, addr: addr.ip.value & netMask(f, addr.prefix), prefix: addr.prefix }
    this.putRoute(normalizeRoute(f === 4 ? { dst, index: addr.index, src: addr.ip } : { dst, index: addr.index, metric: 256 }, LO))
  }

  private removeAddr(addr: Addr): void {
    this.addrs = this.addrs.filter((a) => a !== addr)
    this.emit({ kind: 'addr', action: 'del', addr })
    for (const r of [...this.routes.values()]) {
      if (r.index !== addr.index) continue
      const isLocal = r.type === 'local' && r.dst.addr === addr.ip.value && r.dst.family === fam(addr.ip)
      const isPrefix = r.type === 'unicast' && !r.gateway && r.dst.prefix === addr.prefix &&
        r.dst.addr === netIp({ family: fam(addr.ip), addr: addr.ip.value & netMask(fam(addr.ip), addr.prefix), prefix: addr.prefix }).value &&
        (fam(addr.ip) === 6 ? r.metric === 256 : ipEqual(r.src, addr.ip))
      if (isLocal || isPrefix) this.dropRoute(r)
    }
  }

  private linkUp(link: Link): void {
    if (link.index === LO) {
      for (const text of [[0x7f000001n, 8, 4], [1n, 128, 6]] as const) {
        const addr: Addr = { index: LO, ip: { family: text[2], value: text[0] }, prefix: text[1], scope: 'host' }
        if (!this.addrs.some((a) => sameAddr(a, addr))) { this.addrs.push(addr); this.emit({ kind: 'addr', action: 'new', addr }) }
      }
    }
    for (const a of this.addrs) if (a.index === link.index) this.addConnected(a)
  }

  private linkDown(link: Link): void {
    for (const r of [...this.routes.values()]) if (r.index === link.index && !(r.type !== 'unicast' && r.dst.family === 6)) this.dropRoute(r)
    for (const a of [...this.addrs]) if (a.index === link.index && a.ip.family === 6) this.removeAddr(a)
    for (const [k, n] of [...this.neighs]) {
      if (n.index === link.index) { this.neighs.delete(k); this.emit({ kind: 'neigh', action: 'del', neigh: n }) }
    }
  }

  private removeLink(index: number): void {
    const link = this.links.get(index) as Link
    if (link.up) this.linkDown(link)
    for (const a of [...this.addrs]) if (a.index === index) this.removeAddr(a)
    for (const r of [...this.routes.values()]) if (r.index === index) this.dropRoute(r)
    for (const [k, n] of [...this.neighs]) if (n.index === index) { this.neighs.delete(k); this.emit({ kind: 'neigh', action: 'del', neigh: n }) }
    this.fdb.removeLink(index)
    this.wg.delete(index)
    this.links.delete(index)
    this.emit({ kind: 'link', action: 'del', link })
  }
}

function neighKey(n: Neigh): string {
  return `${n.index}|${n.ip.family}|${n.ip.value}`
}

/** IPv4 addresses are identified by (dev, ip, prefix), IPv6 ones by (dev, ip). */
function sameAddr(a: Addr, b: Addr): boolean {
  return a.index === b.index && ipEqual(a.ip, b.ip) && (a.ip.family === 6 || a.prefix === b.prefix)
}

/** IPv6 derives the scope from the address; IPv4 keeps the requested one. */
function addrScope(addr: Addr): Addr['scope'] {
  if (addr.ip.family === 4) return addr.scope ?? 'universe'
  if (addr.ip.value === 1n) return 'host'
  if (addr.ip.value >> 118n === 0x3fan) return 'link'
  return 'universe'
}
