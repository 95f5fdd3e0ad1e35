/**
 * LinuxKernel: the Kernel interface over one long-lived NETLINK_ROUTE socket (no process per
 * operation). Concurrent calls are auto-batched into one sendmsg; dumps are synchronous and fast.
 * Failures become KernelErrors naming the operation, the object and the errno, e.g.
 * "replace route 10.5.3.0/24 via 10.5.3.0 dev flannel.1: ENETUNREACH".
 *
 * With `netns`, every socket, TUN fd and sysctl access is made inside /var/run/netns/<name>
 * (tests); weftd itself runs in its host namespace and leaves it unset.
 */
import { whenAborted } from '../../util/abort.ts'
import { closeSync } from 'node:fs'
import { koffi } from './koffi.ts'
import type { Family, IpAddr } from '../../ip/ip.ts'
import { formatIp } from '../../ip/ip.ts'
import { silentLogger, type Logger } from '../../log/logger.ts'
import { describeAddr, describeFdb, describeLink, describeNeigh, describeRoute } from '../describe.ts'
import { KernelError } from '../kernel-error.ts'
import type {
  Addr, FdbEntry, Kernel, KernelEvent, KernelEventKind, Link, Neigh, Route, RouteFilter, TunDevice, TunSpec, VxlanSpec,
  IpipSpec, WireGuardChange, WireGuardImpl, WireGuardSpec, WireGuardState,
} from '../kernel.ts'
import type { UserspaceWireGuard } from './wireguard-go.ts'
import { inNetns, Netns } from './netns.ts'
import { NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, type Attr, type NlMessage } from './netlink-codec.ts'
import { NetlinkError, NetlinkSocket } from './netlink-socket.ts'
import {
  addrRequest, AF_BRIDGE, afOf, decodeAddr, decodeEvent, decodeFdb, decodeLink, decodeNeigh, decodeRoute, fdbRequest,
  ifaddrmsg, ifinfomsg, linkNameAttr, ndmsg, neighRequest, routeGetRequest, routeRequest, rtmsg, RTM,
  ipipRequest, setLinkRequest, vxlanRequest,
} from './rtnetlink-codec.ts'
import { readSysctl, writeSysctl } from './sysctl.ts'
import { openTunFds, TunError } from './tun.ts'

export interface LinuxKernelOptions {
  /** Name under /var/run/netns to operate in (tests); default: the current namespace. */
  readonly netns?: string
  readonly logger?: Logger
}

const GROUPS: Record<KernelEventKind, number> = { link: 0x1, neigh: 0x4, fdb: 0x4, addr: 0x10 | 0x100, route: 0x40 | 0x400 }
const CREATE_REPLACE = NLM_F_CREATE | NLM_F_REPLACE

export class LinuxKernel implements Kernel {
  private readonly ns: Netns | undefined
  private readonly sock: NetlinkSocket
  private readonly log: Logger
  private readonly names = new Map<number, string>()
  private readonly subscriptions = new Set<() => void>()
  /** wireguard-go processes this kernel started, by device name. */
  private readonly userspaceWg = new Map<string, UserspaceWireGuard>()

  constructor(options: LinuxKernelOptions = {}) {
    this.log = options.logger ?? silentLogger
    this.ns = options.netns === undefined ? undefined : new Netns(options.netns)
    try {
      this.sock = inNetns(this.ns, () => new NetlinkSocket())
    } catch (err) {
      this.ns?.close()
      throw err
    }
  }

  // ---- links -------------------------------------------------------------------------------

  async getLink(name: string): Promise<Link | undefined> {
    return this.oneLink(ifinfomsg(0), [linkNameAttr(name)], `link ${name}`)
  }

  async getLinkByIndex(index: number): Promise<Link | undefined> {
    return this.oneLink(ifinfomsg(index), [], `link #${index}`)
  }

  async listLinks(): Promise<Link[]> {
    return this.dump('list', 'links', RTM.GETLINK, ifinfomsg(0), (m) => this.remember(decodeLink(m.payload)))
  }

  async createVxlan(spec: VxlanSpec): Promise<Link> {
    const what = `vxlan ${spec.name} id ${spec.vni}`
    await this.call('create', what, RTM.NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0), vxlanRequest(spec))
    const link = await this.getLink(spec.name)
    if (!link) throw new KernelError('create', what, 'ENODEV')
    return link
  }

  async createIpip(spec: IpipSpec): Promise<Link> {
    const what = `ipip ${spec.name}`
    await this.call('create', what, RTM.NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0), ipipRequest(spec))
    const link = await this.getLink(spec.name)
    if (!link) throw new KernelError('create', what, 'ENODEV')
    return link
  }

  async openTun(spec: TunSpec): Promise<TunDevice> {
    let fds: number[]
    try {
      fds = inNetns(this.ns, () => openTunFds(spec.name, spec.multiQueue ?? false, Math.max(1, spec.queues ?? 1)))
    } catch (err) {
      throw new KernelError('open', `tun ${spec.name}`, err instanceof TunError ? err.errno : 'EIO', { cause: err })
    }
    const close = (): void => {
      for (const fd of fds.splice(0)) koffiClose(fd)
    }
    const link = await this.getLink(spec.name).catch((err: unknown) => { close(); throw err })
    if (!link) {
      close()
      throw new KernelError('open', `tun ${spec.name}`, 'ENODEV')
    }
    return { name: spec.name, index: link.index, fds: [...fds], close }
  }

  /**
   * Always a userspace device (wireguard-go) for now: configuring the kernel module needs the
   * WireGuard generic-netlink family, which weft does not speak yet, and the machines weft is
   * tested on have no module (CONFIG_WIREGUARD unset). wireguard-go runs on any kernel with TUN.
   */
  async createWireGuard(spec: WireGuardSpec): Promise<{ link: Link; impl: WireGuardImpl }> {
    const what = `wireguard ${spec.name} (wireguard-go)`
    if (await this.getLink(spec.name)) throw new KernelError('create', what, 'EEXIST')
    const { UserspaceWireGuard } = await import('./wireguard-go.ts')
    const dev = UserspaceWireGuard.start(spec.name, this.ns, this.log)
    const deadline = Date.now() + 10_000
    let link: Link | undefined
    while (!(link = await this.getLink(spec.name))) {
      if (dev.spawnError) {
        const errno = dev.spawnError.code ?? 'EIO'
        throw new KernelError('create', `${what}: ${errno === 'ENOENT' ? 'wireguard-go is not installed (Debian package wireguard-go)' : dev.spawnError.message}`, errno)
      }
      if (!dev.running || Date.now() > deadline) {
        await dev.stop()
        throw new KernelError('create', `${what}: ${dev.running ? 'no device after 10 s' : `exited: ${dev.log.trim() || 'no output'}`}`, 'EIO')
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    this.userspaceWg.set(spec.name, dev)
    await this.setLink(link.index, { mtu: spec.mtu })
    return { link: { ...link, mtu: spec.mtu }, impl: 'userspace' }
  }

  async configureWireGuard(name: string, change: WireGuardChange): Promise<void> {
    await this.wireGuardDevice(name, 'configure').configure(change)
  }

  async getWireGuard(name: string): Promise<WireGuardState | undefined> {
    const dev = this.userspaceWg.get(name)
    return dev?.running ? dev.get() : undefined
  }

  private wireGuardDevice(name: string, op: string): UserspaceWireGuard {
    const dev = this.userspaceWg.get(name)
    if (!dev?.running) throw new KernelError(op, `wireguard ${name}`, 'ENODEV')
    return dev
  }

  async setLink(index: number, change: { up?: boolean; mtu?: number; mac?: string }): Promise<void> {
    const { header, attrs } = setLinkRequest(index, change)
    await this.call('set', () => describeLink(index, this.nameOf), RTM.NEWLINK, 0, header, attrs)
  }

  async deleteLink(index: number): Promise<void> {
    const name = this.names.get(index)
    await this.call('delete', () => describeLink(index, this.nameOf), RTM.DELLINK, 0, ifinfomsg(index), [])
    this.names.delete(index)
    // A userspace WireGuard device's process ends with its TUN device: wait for it.
    const wg = name === undefined ? undefined : this.userspaceWg.get(name)
    if (wg && name !== undefined) {
      this.userspaceWg.delete(name)
      await wg.stop()
    }
  }

  // ---- addresses ---------------------------------------------------------------------------

  replaceAddr(addr: Addr): Promise<void> {
    return this.exec('replace', () => describeAddr(addr, this.nameOf), RTM.NEWADDR, CREATE_REPLACE, () => addrRequest(addr))
  }

  deleteAddr(addr: Addr): Promise<void> {
    return this.exec('delete', () => describeAddr(addr, this.nameOf), RTM.DELADDR, 0, () => addrRequest(addr))
  }

  async listAddrs(family: Family, index?: number): Promise<Addr[]> {
    const all = this.dump('list', `IPv${family} addresses`, RTM.GETADDR, ifaddrmsg(afOf(family), 0, 0, 0), (m) => decodeAddr(m.payload))
    return all.filter((a) => a.ip.family === family && (index === undefined || a.index === index))
  }

  // ---- routes ------------------------------------------------------------------------------

  replaceRoute(route: Route): Promise<void> {
    return this.exec('replace', () => describeRoute(route, this.nameOf), RTM.NEWROUTE, CREATE_REPLACE, () => routeRequest(route, false))
  }

  deleteRoute(route: Route): Promise<void> {
    return this.exec('delete', () => describeRoute(route, this.nameOf), RTM.DELROUTE, 0, () => routeRequest(route, true))
  }

  /** `filter.table` defaults to main (254); 0 lists every table. */
  async listRoutes(filter: RouteFilter): Promise<Route[]> {
    const table = filter.table ?? 254
    const all = this.dump('list', `IPv${filter.family} routes`, RTM.GETROUTE, rtmsg(afOf(filter.family), 0, 0, 0, 0, 0, 0), (m) => decodeRoute(m.payload))
    return all.filter((r) =>
      r.dst.family === filter.family && (table === 0 || r.table === table) &&
      (filter.index === undefined || r.index === filter.index) && (filter.type === undefined || r.type === filter.type) &&
      (filter.dst === undefined || (r.dst.addr === filter.dst.addr && r.dst.prefix === filter.dst.prefix)))
  }

  async routeGet(dst: IpAddr): Promise<Route> {
    const { header, attrs } = routeGetRequest(dst)
    const replies = await this.call('get', `route to ${formatIp(dst)}`, RTM.GETROUTE, 0, header, attrs)
    const route = replies.map((m) => decodeRoute(m.payload, true)).find((r) => r !== undefined)
    if (!route) throw new KernelError('get', `route to ${formatIp(dst)}`, 'ENOENT')
    return route
  }

  // ---- neighbours and FDB ------------------------------------------------------------------

  replaceNeigh(neigh: Neigh): Promise<void> {
    return this.exec('replace', () => describeNeigh(neigh, this.nameOf), RTM.NEWNEIGH, CREATE_REPLACE, () => neighRequest(neigh, false))
  }

  deleteNeigh(neigh: Neigh): Promise<void> {
    return this.exec('delete', () => describeNeigh(neigh, this.nameOf), RTM.DELNEIGH, 0, () => neighRequest(neigh, true))
  }

  async listNeighs(family: Family, index?: number): Promise<Neigh[]> {
    const all = this.dump('list', `IPv${family} neighbours`, RTM.GETNEIGH, ndmsg(afOf(family), 0, 0, 0), (m) => decodeNeigh(m.payload))
    return all.filter((n) => n.ip.family === family && (index === undefined || n.index === index))
  }

  replaceFdb(entry: FdbEntry): Promise<void> {
    return this.exec('replace', () => describeFdb(entry, this.nameOf), RTM.NEWNEIGH, CREATE_REPLACE, () => fdbRequest(entry, false))
  }

  appendFdb(entry: FdbEntry): Promise<void> {
    return this.exec('append', () => describeFdb(entry, this.nameOf), RTM.NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, () => fdbRequest(entry, false))
  }

  deleteFdb(entry: FdbEntry): Promise<void> {
    return this.exec('delete', () => describeFdb(entry, this.nameOf), RTM.DELNEIGH, 0, () => fdbRequest(entry, true))
  }

  async listFdb(index?: number): Promise<FdbEntry[]> {
    const all = this.dump('list', 'fdb', RTM.GETNEIGH, ndmsg(AF_BRIDGE, 0, 0, 0), (m) => decodeFdb(m.payload))
    return all.filter((e) => index === undefined || e.index === index)
  }

  // ---- sysctl and notifications ------------------------------------------------------------

  async setSysctl(path: string, value: string): Promise<void> {
    try {
      inNetns(this.ns, () => writeSysctl(path, value))
    } catch (err) {
      throw new KernelError('set', `sysctl ${path}`, (err as NodeJS.ErrnoException).code ?? 'EINVAL', { cause: err })
    }
  }

  async getSysctl(path: string): Promise<string | undefined> {
    try {
      return inNetns(this.ns, () => readSysctl(path))
    } catch (err) {
      throw new KernelError('get', `sysctl ${path}`, (err as NodeJS.ErrnoException).code ?? 'EINVAL', { cause: err })
    }
  }

  /** Resolves once the notification socket is bound; events flow until `signal` aborts. */
  async subscribe(kinds: readonly KernelEventKind[], onEvent: (event: KernelEvent) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return
    const wanted = new Set(kinds)
    let groups = 0
    for (const k of wanted) groups |= GROUPS[k]
    let sock: NetlinkSocket
    try {
      sock = inNetns(this.ns, () => new NetlinkSocket({ groups }))
    } catch (err) {
      throw new KernelError('subscribe', kinds.join(','), err instanceof NetlinkError ? err.errno : 'EIO', { cause: err })
    }
    const deliver = (msg: NlMessage): void => {
      const event = decodeEvent(msg)
      if (!event || !wanted.has(event.kind)) return
      if (event.kind === 'link') this.remember(event.link)
      try {
        onEvent(event)
      } catch (err) {
        this.log.error('kernel event handler failed', { kind: event.kind }, err)
      }
    }
    const handle = koffi().node.poll(sock.fd, { readable: true }, () => {
      const errno = sock.drain(deliver)
      // ENOBUFS: the kernel dropped notifications; subscribers must resync from a dump.
      if (errno) this.log.warn('kernel notifications lost', { errno })
    })
    const stop = (): void => {
      handle.stop()
      handle.close()
      sock.close()
      this.subscriptions.delete(stop)
    }
    this.subscriptions.add(stop)
    whenAborted(signal, stop)
  }

  close(): void {
    for (const wg of this.userspaceWg.values()) wg.kill()
    this.userspaceWg.clear()
    for (const stop of [...this.subscriptions]) stop()
    this.sock.close()
    this.ns?.close()
  }

  // ---- internals ---------------------------------------------------------------------------

  private readonly nameOf = (index: number): string | undefined => {
    if (!this.names.has(index)) {
      try {
        this.sock.dump(RTM.GETLINK, ifinfomsg(0), [], (m) => this.remember(decodeLink(m.payload)))
      } catch {
        // Only used to word an error message; the index is printed instead.
      }
    }
    return this.names.get(index)
  }

  private remember(link: Link | undefined): Link | undefined {
    if (link) this.names.set(link.index, link.name)
    return link
  }

  /** The hot path for mutations: no async wrapper, one extra promise only. */
  private exec(op: string, what: () => string, type: number, flags: number, build: () => { header: Buffer; attrs: Attr[] }): Promise<void> {
    let req: { header: Buffer; attrs: Attr[] }
    try {
      req = build()
    } catch (err) {
      return Promise.reject(kernelError(op, what(), err))
    }
    return this.sock.request(type, flags, req.header, req.attrs).then(noop, (err: unknown) => {
      throw kernelError(op, what(), err)
    })
  }

  private async call(
    op: string, what: string | (() => string), type: number, flags: number, header: Buffer, attrs: Attr[],
  ): Promise<NlMessage[]> {
    try {
      return await this.sock.request(type, flags, header, attrs)
    } catch (err) {
      throw kernelError(op, typeof what === 'string' ? what : what(), err)
    }
  }

  private dump<T>(op: string, what: string, type: number, header: Buffer, decode: (m: NlMessage) => T | undefined): T[] {
    try {
      return this.sock.dump(type, header, [], decode)
    } catch (err) {
      throw kernelError(op, what, err)
    }
  }

  private async oneLink(header: Buffer, attrs: Attr[], what: string): Promise<Link | undefined> {
    try {
      const replies = await this.sock.request(RTM.GETLINK, 0, header, attrs)
      return this.remember(replies.map((m) => decodeLink(m.payload)).find((l) => l !== undefined))
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === 'ENODEV') return undefined
      throw kernelError('get', what, err)
    }
  }
}

const noop = (): void => undefined

function kernelError(op: string, what: string, err: unknown): KernelError {
  if (err instanceof KernelError) return err
  const errno = err instanceof NetlinkError ? err.errno : err instanceof RangeError ? 'EINVAL' : 'EIO'
  return new KernelError(op, what, errno, { cause: err })
}

function koffiClose(fd: number): void {
  try {
    // fs.closeSync works on any fd number and reports EBADF instead of aborting.
    closeSync(fd)
  } catch {
    // already closed
  }
}

