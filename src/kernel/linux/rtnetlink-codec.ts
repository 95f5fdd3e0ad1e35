/**
 * rtnetlink messages ↔ weft's kernel value types, pure (Buffer in, values out). Decoders return
 * undefined for a payload they cannot make sense of (short header, unknown family or route type)
 * and ignore unknown attributes, so a kernel newer than this code cannot crash the daemon.
 */
import type { Family, IpAddr } from '../../ip/ip.ts'
import { macFromBytes, macToBytes } from '../describe.ts'
import type { Addr, FdbEntry, KernelEvent, Link, Neigh, NeighState, Route, RouteScope, RouteType, VxlanAttrs, IpipAttrs } from '../kernel.ts'
import { be16, bytes, flag, nested, parseAttrs, str, u32, u8, type Attr, type NlMessage } from './netlink-codec.ts'

export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18, NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26, NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
} as const

export const AF_UNSPEC = 0
export const AF_INET = 2
export const AF_BRIDGE = 7
export const AF_INET6 = 10
export const afOf = (family: Family): number => (family === 4 ? AF_INET : AF_INET6)

const IFF_UP = 1
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINKINFO: 18 } as const
const INFO = { KIND: 1, DATA: 2 } as const
const IPTUN = { LOCAL: 2, REMOTE: 3 } as const
const VXLAN = { ID: 1, LINK: 3, LOCAL: 4, LEARNING: 7, PORT: 15, LOCAL6: 17, GBP: 23 } as const
const IFA = { ADDRESS: 1, LOCAL: 2 } as const
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, TABLE: 15 } as const
const NDA = { DST: 1, LLADDR: 2 } as const
const RTNH_F_ONLINK = 4
const RTM_F_CLONED = 0x200
export const NTF_SELF = 0x02
const NTF_MASTER = 0x04
export const RT_SCOPE_NOWHERE = 255
const RTPROT_BOOT = 3

const SCOPES: Record<number, RouteScope> = { 0: 'universe', 253: 'link', 254: 'host' }
const SCOPE_NUM: Record<RouteScope, number> = { universe: 0, link: 253, host: 254 }
const TYPES: Record<number, RouteType> = { 1: 'unicast', 2: 'local', 6: 'blackhole', 7: 'unreachable' }
const TYPE_NUM: Record<RouteType, number> = { unicast: 1, local: 2, blackhole: 6, unreachable: 7 }
const NUD: [number, NeighState][] = [
  [0x80, 'permanent'], [0x40, 'noarp'], [0x20, 'failed'], [0x10, 'probe'], [0x08, 'delay'], [0x04, 'stale'], [0x02, 'reachable'], [0x01, 'incomplete'],
]
const NUD_NUM = Object.fromEntries(NUD.map(([n, s]) => [s, n])) as Record<NeighState, number>
NUD_NUM.none = 0

const MASK64 = (1n << 64n) - 1n

/** Network-order bytes of an address; a fast path for the hot encode loop (no per-byte BigInt work). */
export function ipToBytes(ip: IpAddr): Buffer {
  if (ip.family === 4) {
    const b = Buffer.allocUnsafe(4)
    b.writeUInt32BE(Number(ip.value))
    return b
  }
  const b = Buffer.allocUnsafe(16)
  b.writeBigUInt64BE(ip.value >> 64n, 0)
  b.writeBigUInt64BE(ip.value & MASK64, 8)
  return b
}

/** Address from 4 or 16 attribute bytes, read as whole words (per-byte BigInt math is slow). */
function ipOf(b: Buffer | undefined): IpAddr | undefined {
  if (!b) return undefined
  if (b.length === 4) return { family: 4, value: BigInt(b.readUInt32BE(0)) }
  if (b.length === 16) return { family: 6, value: (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8) }
  return undefined
}
const cstr = (b: Buffer): string => {
  const z = b.indexOf(0)
  return b.toString('utf8', 0, z < 0 ? b.length : z)
}
const u32Of = (b: Buffer | undefined): number | undefined => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined)

// ---- headers -------------------------------------------------------------------------------

export function ifinfomsg(index: number, flags = 0, change = 0, family = AF_UNSPEC): Buffer {
  const b = Buffer.allocUnsafe(16).fill(0)
  b.writeUInt8(family, 0)
  b.writeInt32LE(index, 4)
  b.writeUInt32LE(flags, 8)
  b.writeUInt32LE(change, 12)
  return b
}

export function ifaddrmsg(family: number, prefix: number, scope: number, index: number): Buffer {
  const b = Buffer.allocUnsafe(8).fill(0)
  b.writeUInt8(family, 0)
  b.writeUInt8(prefix, 1)
  b.writeUInt8(scope, 3)
  b.writeUInt32LE(index, 4)
  return b
}

export function rtmsg(family: number, dstLen: number, table: number, protocol: number, scope: number, type: number, flags: number): Buffer {
  const b = Buffer.allocUnsafe(12).fill(0)
  b.writeUInt8(family, 0)
  b.writeUInt8(dstLen, 1)
  b.writeUInt8(table > 255 ? 0 : table, 4)
  b.writeUInt8(protocol, 5)
  b.writeUInt8(scope, 6)
  b.writeUInt8(type, 7)
  b.writeUInt32LE(flags, 8)
  return b
}

export function ndmsg(family: number, index: number, state: number, flags: number): Buffer {
  const b = Buffer.allocUnsafe(12).fill(0)
  b.writeUInt8(family, 0)
  b.writeInt32LE(index, 4)
  b.writeUInt16LE(state, 8)
  b.writeUInt8(flags, 10)
  return b
}

// ---- requests ------------------------------------------------------------------------------

export interface Request {
  readonly type: number
  readonly flags: number
  readonly header: Buffer
  readonly attrs: Attr[]
}

export function vxlanRequest(spec: {
  name: string; vni: number; port: number; local?: IpAddr; parentIndex?: number; learning: boolean; gbp: boolean; mtu?: number; mac?: string
}): Attr[] {
  const data: Attr[] = [u32(VXLAN.ID, spec.vni), u8(VXLAN.LEARNING, spec.learning ? 1 : 0)]
  if (spec.local) data.push(bytes(spec.local.family === 4 ? VXLAN.LOCAL : VXLAN.LOCAL6, ipToBytes(spec.local)))
  if (spec.parentIndex) data.push(u32(VXLAN.LINK, spec.parentIndex))
  if (spec.port) data.push(be16(VXLAN.PORT, spec.port))
  if (spec.gbp) data.push(flag(VXLAN.GBP))
  const attrs: Attr[] = [str(IFLA.IFNAME, spec.name), nested(IFLA.LINKINFO, [str(INFO.KIND, 'vxlan'), nested(INFO.DATA, data)])]
  if (spec.mtu !== undefined) attrs.push(u32(IFLA.MTU, spec.mtu))
  if (spec.mac !== undefined) attrs.push(bytes(IFLA.ADDRESS, macToBytes(spec.mac)))
  return attrs
}

/** RTM_NEWLINK attributes for an ipip tunnel (IFLA_IPTUN_LOCAL / _REMOTE). */
export function ipipRequest(spec: { name: string; local?: IpAddr; remote?: IpAddr; mtu?: number }): Attr[] {
  const data: Attr[] = []
  if (spec.local) data.push(bytes(IPTUN.LOCAL, ipToBytes(spec.local)))
  if (spec.remote) data.push(bytes(IPTUN.REMOTE, ipToBytes(spec.remote)))
  const attrs: Attr[] = [str(IFLA.IFNAME, spec.name), nested(IFLA.LINKINFO, [str(INFO.KIND, 'ipip'), nested(INFO.DATA, data)])]
  if (spec.mtu !== undefined) attrs.push(u32(IFLA.MTU, spec.mtu))
  return attrs
}

export function setLinkRequest(index: number, change: { up?: boolean; mtu?: number; mac?: string }): { header: Buffer; attrs: Attr[] } {
  const attrs: Attr[] = []
  if (change.mtu !== undefined) attrs.push(u32(IFLA.MTU, change.mtu))
  if (change.mac !== undefined) attrs.push(bytes(IFLA.ADDRESS, macToBytes(change.mac)))
  const header = change.up === undefined ? ifinfomsg(index) : ifinfomsg(index, change.up ? IFF_UP : 0, IFF_UP)
  return { header, attrs }
}

export const linkNameAttr = (name: string): Attr => str(IFLA.IFNAME, name)

export function addrRequest(addr: Addr): { header: Buffer; attrs: Attr[] } {
  const raw = ipToBytes(addr.ip)
  const scope = addr.ip.family === 4 ? SCOPE_NUM[addr.scope ?? 'universe'] : 0
  return { header: ifaddrmsg(afOf(addr.ip.family), addr.prefix, scope, addr.index), attrs: [bytes(IFA.LOCAL, raw), bytes(IFA.ADDRESS, raw)] }
}

/** iproute2's default scope: link for a unicast route without gateway, host for local, else universe. */
function routeScope(route: Route): number {
  if (route.scope) return SCOPE_NUM[route.scope]
  const type = route.type ?? 'unicast'
  if (type === 'local') return SCOPE_NUM.host
  return type === 'unicast' && !route.gateway ? SCOPE_NUM.link : SCOPE_NUM.universe
}

/** For delete, unset fields are wildcards: scope NOWHERE, type and protocol 0. */
export function routeRequest(route: Route, forDelete: boolean): { header: Buffer; attrs: Attr[] } {
  const table = route.table ?? 254
  const header = rtmsg(
    afOf(route.dst.family), route.dst.prefix, table,
    forDelete ? 0 : RTPROT_BOOT,
    forDelete ? (route.scope ? SCOPE_NUM[route.scope] : RT_SCOPE_NOWHERE) : routeScope(route),
    forDelete ? (route.type ? TYPE_NUM[route.type] : 0) : TYPE_NUM[route.type ?? 'unicast'],
    route.onlink ? RTNH_F_ONLINK : 0,
  )
  const attrs: Attr[] = [u32(RTA.TABLE, table)]
  if (route.dst.prefix > 0) attrs.push(bytes(RTA.DST, ipToBytes({ family: route.dst.family, value: route.dst.addr })))
  if (route.gateway) attrs.push(bytes(RTA.GATEWAY, ipToBytes(route.gateway)))
  if (route.index !== undefined) attrs.push(u32(RTA.OIF, route.index))
  if (route.metric !== undefined) attrs.push(u32(RTA.PRIORITY, route.metric))
  if (route.src) attrs.push(bytes(RTA.PREFSRC, ipToBytes(route.src)))
  return { header, attrs }
}

export function routeGetRequest(dst: IpAddr): { header: Buffer; attrs: Attr[] } {
  return { header: rtmsg(afOf(dst.family), dst.family === 4 ? 32 : 128, 0, 0, 0, 0, 0), attrs: [bytes(RTA.DST, ipToBytes(dst))] }
}

export function neighRequest(neigh: Neigh, forDelete: boolean): { header: Buffer; attrs: Attr[] } {
  const attrs: Attr[] = [bytes(NDA.DST, ipToBytes(neigh.ip))]
  if (neigh.mac && !forDelete) attrs.push(bytes(NDA.LLADDR, macToBytes(neigh.mac)))
  return { header: ndmsg(afOf(neigh.ip.family), neigh.index, forDelete ? 0 : NUD_NUM[neigh.state ?? 'permanent'], 0), attrs }
}

export function fdbRequest(entry: FdbEntry, forDelete: boolean): { header: Buffer; attrs: Attr[] } {
  const attrs: Attr[] = [bytes(NDA.LLADDR, macToBytes(entry.mac))]
  if (entry.dst) attrs.push(bytes(NDA.DST, ipToBytes(entry.dst)))
  const flags = entry.self === false ? NTF_MASTER : NTF_SELF
  return { header: ndmsg(AF_BRIDGE, entry.index, forDelete ? 0 : NUD_NUM[entry.state ?? 'permanent'], flags), attrs }
}

// ---- decoders ------------------------------------------------------------------------------

export function decodeLink(p: Buffer): Link | undefined {
  if (p.length < 16) return undefined
  const a = parseAttrs(p, 16)
  const name = a.get(IFLA.IFNAME)
  if (!name) return undefined
  const link: { -readonly [K in keyof Link]: Link[K] } = {
    index: p.readInt32LE(4), name: cstr(name), mtu: u32Of(a.get(IFLA.MTU)) ?? 0, up: (p.readUInt32LE(8) & IFF_UP) !== 0,
  }
  const mac = a.get(IFLA.ADDRESS)
  if (mac && mac.length === 6) link.mac = macFromBytes(mac)
  const info = a.get(IFLA.LINKINFO)
  if (info) {
    const ia = parseAttrs(info)
    const kind = ia.get(INFO.KIND)
    if (kind) link.kind = cstr(kind)
    const data = ia.get(INFO.DATA)
    if (link.kind === 'vxlan' && data) link.vxlan = decodeVxlan(parseAttrs(data))
    if (link.kind === 'ipip' && data) link.ipip = decodeIpip(parseAttrs(data))
  }
  return link
}

function decodeIpip(d: Map<number, Buffer>): IpipAttrs {
  const local = ipOf(d.get(IPTUN.LOCAL))
  const remote = ipOf(d.get(IPTUN.REMOTE))
  // 0.0.0.0 = any: reported as absent.
  return { ...(local && local.value !== 0n ? { local } : {}), ...(remote && remote.value !== 0n ? { remote } : {}) }
}

function decodeVxlan(d: Map<number, Buffer>): VxlanAttrs {
  const port = d.get(VXLAN.PORT)
  const out: { -readonly [K in keyof VxlanAttrs]: VxlanAttrs[K] } = {
    vni: u32Of(d.get(VXLAN.ID)) ?? 0,
    port: port && port.length >= 2 ? port.readUInt16BE(0) : 0,
    learning: (d.get(VXLAN.LEARNING)?.[0] ?? 0) !== 0,
    gbp: d.has(VXLAN.GBP),
  }
  const local = ipOf(d.get(VXLAN.LOCAL)) ?? ipOf(d.get(VXLAN.LOCAL6))
  if (local) out.local = local
  const parent = u32Of(d.get(VXLAN.LINK))
  if (parent) out.parentIndex = parent
  return out
}

export function decodeAddr(p: Buffer): Addr | undefined {
  if (p.length < 8) return undefined
  const a = parseAttrs(p, 8)
  const ip = ipOf(a.get(IFA.LOCAL)) ?? ipOf(a.get(IFA.ADDRESS))
  if (!ip) return undefined
  const scope = SCOPES[p.readUInt8(3)]
  return { index: p.readUInt32LE(4), ip, prefix: p.readUInt8(1), ...(scope ? { scope } : {}) }
}

/** Undefined for cloned (cache) entries and route types weft does not model. */
export function decodeRoute(p: Buffer, allowCloned = false): Route | undefined {
  if (p.length < 12) return undefined
  const af = p.readUInt8(0)
  if (af !== AF_INET && af !== AF_INET6) return undefined
  const family: Family = af === AF_INET ? 4 : 6
  const type = TYPES[p.readUInt8(7)]
  const flags = p.readUInt32LE(8)
  if (!type || (!allowCloned && (flags & RTM_F_CLONED) !== 0)) return undefined
  const a = parseAttrs(p, 12)
  const prefix = p.readUInt8(1)
  const dstIp = ipOf(a.get(RTA.DST))
  if (prefix > (family === 4 ? 32 : 128) || (dstIp && dstIp.family !== family)) return undefined
  const route: { -readonly [K in keyof Route]: Route[K] } = {
    dst: { family, addr: dstIp?.value ?? 0n, prefix }, table: u32Of(a.get(RTA.TABLE)) ?? p.readUInt8(4), type,
  }
  const scope = SCOPES[p.readUInt8(6)]
  if (scope) route.scope = scope
  const gw = ipOf(a.get(RTA.GATEWAY))
  if (gw) route.gateway = gw
  const oif = u32Of(a.get(RTA.OIF))
  if (oif !== undefined) route.index = oif
  if (flags & RTNH_F_ONLINK) route.onlink = true
  const src = ipOf(a.get(RTA.PREFSRC))
  if (src) route.src = src
  const metric = u32Of(a.get(RTA.PRIORITY))
  if (metric !== undefined) route.metric = metric
  return route
}

function stateOf(n: number): NeighState {
  for (const [bit, s] of NUD) if (n & bit) return s
  return 'none'
}

export function decodeNeigh(p: Buffer): Neigh | undefined {
  if (p.length < 12) return undefined
  const af = p.readUInt8(0)
  if (af !== AF_INET && af !== AF_INET6) return undefined
  const a = parseAttrs(p, 12)
  const ip = ipOf(a.get(NDA.DST))
  if (!ip) return undefined
  const mac = a.get(NDA.LLADDR)
  return { index: p.readInt32LE(4), ip, state: stateOf(p.readUInt16LE(8)), ...(mac?.length === 6 ? { mac: macFromBytes(mac) } : {}) }
}

export function decodeFdb(p: Buffer): FdbEntry | undefined {
  if (p.length < 12 || p.readUInt8(0) !== AF_BRIDGE) return undefined
  const a = parseAttrs(p, 12)
  const mac = a.get(NDA.LLADDR)
  if (!mac || mac.length !== 6) return undefined
  const dst = ipOf(a.get(NDA.DST))
  return {
    index: p.readInt32LE(4), mac: macFromBytes(mac), self: (p.readUInt8(10) & NTF_SELF) !== 0,
    state: stateOf(p.readUInt16LE(8)), ...(dst ? { dst } : {}),
  }
}

/** Family byte of an ndmsg: tells FDB (AF_BRIDGE) from neighbour notifications. */
export const ndFamily = (p: Buffer): number => (p.length >= 1 ? p.readUInt8(0) : -1)

/** A notification as a KernelEvent; undefined for messages weft does not model. */
export function decodeEvent(msg: NlMessage): KernelEvent | undefined {
  const action = msg.type === RTM.NEWLINK || msg.type === RTM.NEWADDR || msg.type === RTM.NEWROUTE || msg.type === RTM.NEWNEIGH ? 'new' : 'del'
  switch (msg.type) {
    case RTM.NEWLINK:
    case RTM.DELLINK: {
      const link = decodeLink(msg.payload)
      return link && { kind: 'link', action, link }
    }
    case RTM.NEWADDR:
    case RTM.DELADDR: {
      const addr = decodeAddr(msg.payload)
      return addr && { kind: 'addr', action, addr }
    }
    case RTM.NEWROUTE:
    case RTM.DELROUTE: {
      const route = decodeRoute(msg.payload)
      return route && { kind: 'route', action, route }
    }
    case RTM.NEWNEIGH:
    case RTM.DELNEIGH: {
      if (ndFamily(msg.payload) === AF_BRIDGE) {
        const fdb = decodeFdb(msg.payload)
        return fdb && { kind: 'fdb', action, fdb }
      }
      const neigh = decodeNeigh(msg.payload)
      return neigh && { kind: 'neigh', action, neigh }
    }
    default:
      return undefined
  }
}
