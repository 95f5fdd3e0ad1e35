/**
 * IP addresses and networks as plain values. One representation for both families (a bigint
 * plus `family`), so no code path is written twice for IPv4 and IPv6.
 */
export type Family = 4 | 6

export interface IpAddr {
  readonly family: Family
  readonly value: bigint
}

export interface IpNet {
  readonly family: Family
  /** Network address, host bits always zero. */
  readonly addr: bigint
  readonly prefix: number
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128)

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/** Strict parse: dotted quad or RFC 4291 text; undefined when malformed. */
export function parseIp(text: string): IpAddr | undefined {
  const m = V4.exec(text)
  if (m) {
    let value = 0n
    for (let i = 1; i <= 4; i++) {
      const part = m[i] as string
      if (part.length > 1 && part.startsWith('0')) return undefined
      const n = Number(part)
      if (n > 255) return undefined
      value = (value << 8n) | BigInt(n)
    }
    return { family: 4, value }
  }
  return parseIp6(text)
}

function parseIp6(text: string): IpAddr | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length < 2) return undefined
  let tail: bigint[] = []
  let body = text
  const lastColon = text.lastIndexOf(':')
  if (text.includes('.')) {
    // An embedded dotted quad only ends an IPv6 text (::ffff:1.2.3.4); never recurse into IPv6.
    if (lastColon < 0 || !V4.test(text.slice(lastColon + 1))) return undefined
    const v4 = parseIp(text.slice(lastColon + 1))
    if (!v4 || v4.family !== 4) return undefined
    tail = [v4.value >> 16n, v4.value & 0xffffn]
    // Keep everything before the dotted quad; a trailing '::' stays a compression marker.
    body = text.slice(0, lastColon)
    if (body.endsWith(':')) body += ':'
  }
  const halves = body.split('::')
  if (halves.length > 2) return undefined
  const parseGroups = (s: string): bigint[] | undefined => {
    if (s === '') return []
    const out: bigint[] = []
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      out.push(BigInt('0x' + g))
    }
    return out
  }
  const head = parseGroups(halves[0] as string)
  const rest = halves.length === 2 ? parseGroups(halves[1] as string) : []
  if (!head || !rest) return undefined
  const groups = halves.length === 2 ? [...head, ...rest, ...tail] : [...head, ...tail]
  const wanted = 8
  if (halves.length === 2) {
    const missing = wanted - groups.length
    if (missing < 1) return undefined
    const filled = [...head, ...new Array<bigint>(missing).fill(0n), ...rest, ...tail]
    return { family: 6, value: filled.reduce((acc, g) => (acc << 16n) | g, 0n) }
  }
  if (groups.length !== wanted) return undefined
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | g, 0n) }
}

export function formatIp(ip: IpAddr): string {
  if (ip.family === 4) {
    const v = ip.value
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.')
  }
  const groups: number[] = []
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn))
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':')
}

/** Parses `addr/prefix` and masks the host bits, as Go's ParseCIDR does (10.5.1.2/16 → 10.5.0.0/16). */
export function parseCidr(text: string): IpNet | undefined {
  const slash = text.indexOf('/')
  if (slash < 0) return undefined
  const ip = parseIp(text.slice(0, slash))
  const prefixText = text.slice(slash + 1)
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined
  const prefix = Number(prefixText)
  if (prefix > bitsOf(ip.family)) return undefined
  return { family: ip.family, addr: ip.value & netMask(ip.family, prefix), prefix }
}

/** Parses `addr/prefix` keeping the host bits (an interface address). */
export function parseIpWithPrefix(text: string): { ip: IpAddr; net: IpNet } | undefined {
  const net = parseCidr(text)
  if (!net) return undefined
  return { ip: parseIp(text.slice(0, text.indexOf('/'))) as IpAddr, net }
}

export function formatCidr(net: IpNet): string {
  return `${formatIp({ family: net.family, value: net.addr })}/${net.prefix}`
}

export function netMask(family: Family, prefix: number): bigint {
  return MASKS[family][prefix] ?? computeMask(family, prefix)
}

function computeMask(family: Family, prefix: number): bigint {
  const bits = BigInt(bitsOf(family))
  const all = (1n << bits) - 1n
  return (all << (bits - BigInt(prefix))) & all
}

/** Every mask made once: containment checks run per route and per lease, thousands at a time. */
const MASKS: Readonly<Record<Family, readonly bigint[]>> = {
  4: Array.from({ length: 33 }, (_, p) => computeMask(4, p)),
  6: Array.from({ length: 129 }, (_, p) => computeMask(6, p)),
}

/** Number of addresses in the network. */
export function netSize(net: IpNet): bigint {
  return 1n << BigInt(bitsOf(net.family) - net.prefix)
}

export function netIp(net: IpNet): IpAddr {
  return { family: net.family, value: net.addr }
}

/** Last address of the network (broadcast for IPv4). */
export function netLast(net: IpNet): IpAddr {
  return { family: net.family, value: net.addr + netSize(net) - 1n }
}

export function netContainsIp(net: IpNet, ip: IpAddr): boolean {
  return net.family === ip.family && (ip.value & netMask(net.family, net.prefix)) === net.addr
}

/** True when `inner` lies entirely within `outer`. */
export function netContainsNet(outer: IpNet, inner: IpNet): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && netContainsIp(outer, netIp(inner))
}

export function netOverlaps(a: IpNet, b: IpNet): boolean {
  return netContainsNet(a, b) || netContainsNet(b, a)
}

export function netEqual(a: IpNet | undefined, b: IpNet | undefined): boolean {
  if (!a || !b) return a === b
  return a.family === b.family && a.addr === b.addr && a.prefix === b.prefix
}

export function ipEqual(a: IpAddr | undefined, b: IpAddr | undefined): boolean {
  if (!a || !b) return a === b
  return a.family === b.family && a.value === b.value
}

export function ipAdd(ip: IpAddr, n: bigint): IpAddr {
  return { family: ip.family, value: ip.value + n }
}

/** Unicast, not unspecified/loopback/multicast/broadcast: usable as a peer's PublicIP. */
export function isUnicast(ip: IpAddr): boolean {
  if (ip.family === 4) {
    const first = Number(ip.value >> 24n)
    return ip.value !== 0n && first !== 127 && first < 224
  }
  const top = Number(ip.value >> 120n)
  return ip.value !== 0n && ip.value !== 1n && top !== 0xff
}

export function ipToBytes(ip: IpAddr): Uint8Array {
  const len = ip.family === 4 ? 4 : 16
  const out = new Uint8Array(len)
  let v = ip.value
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

export function ipFromBytes(bytes: Uint8Array): IpAddr {
  if (bytes.length !== 4 && bytes.length !== 16) throw new RangeError(`an IP address has 4 or 16 bytes, got ${bytes.length}`)
  let v = 0n
  for (const b of bytes) v = (v << 8n) | BigInt(b)
  return { family: bytes.length === 4 ? 4 : 6, value: v }
}
