/**
 * Human text for kernel objects, shared by LinuxKernel and MemoryKernel so their error
 * messages read alike: "replace route 10.5.3.0/24 via 10.5.3.0 dev flannel.1: ENETUNREACH".
 */
import { formatCidr, formatIp } from '../ip/ip.ts'
import type { Addr, FdbEntry, Neigh, Route } from './kernel.ts'

/** Maps an ifindex to a device name; unknown indexes print as `if#7`. */
export type NameOf = (index: number) => string | undefined

const dev = (nameOf: NameOf, index: number): string => nameOf(index) ?? `if#${index}`

export function describeRoute(route: Route, nameOf: NameOf): string {
  const parts = ['route']
  if (route.type && route.type !== 'unicast') parts.push(route.type)
  parts.push(formatCidr(route.dst))
  if (route.gateway) parts.push('via', formatIp(route.gateway))
  if (route.index !== undefined) parts.push('dev', dev(nameOf, route.index))
  if (route.onlink) parts.push('onlink')
  if (route.table !== undefined && route.table !== 254) parts.push('table', String(route.table))
  if (route.metric !== undefined) parts.push('metric', String(route.metric))
  return parts.join(' ')
}

export function describeAddr(addr: Addr, nameOf: NameOf): string {
  return `address ${formatIp(addr.ip)}/${addr.prefix} dev ${dev(nameOf, addr.index)}`
}

export function describeNeigh(neigh: Neigh, nameOf: NameOf): string {
  const mac = neigh.mac ? ` lladdr ${neigh.mac}` : ''
  return `neighbour ${formatIp(neigh.ip)}${mac} dev ${dev(nameOf, neigh.index)}`
}

export function describeFdb(entry: FdbEntry, nameOf: NameOf): string {
  const dst = entry.dst ? ` dst ${formatIp(entry.dst)}` : ''
  return `fdb ${entry.mac} dev ${dev(nameOf, entry.index)}${dst}`
}

export function describeLink(index: number, nameOf: NameOf): string {
  return `link ${dev(nameOf, index)}`
}

/** Lower-case colon form; undefined when `mac` is not six hex octets. */
export function normalizeMac(mac: string): string | undefined {
  const parts = mac.split(/[:-]/)
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) return undefined
  return parts.map((p) => p.toLowerCase().padStart(2, '0')).join(':')
}

const hexDigit = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1

/** Six bytes of a MAC; the common `xx:xx:xx:xx:xx:xx` form is parsed without regex or allocations. */
export function macToBytes(mac: string): Uint8Array {
  const out = Buffer.allocUnsafe(6)
  if (mac.length === 17) {
    let i = 0
    for (; i < 6; i++) {
      const hi = hexDigit(mac.charCodeAt(i * 3))
      const lo = hexDigit(mac.charCodeAt(i * 3 + 1))
      const sep = i < 5 ? mac.charCodeAt(i * 3 + 2) : 58
      if (hi < 0 || lo < 0 || (sep !== 58 && sep !== 45)) break
      out[i] = hi * 16 + lo
    }
    if (i === 6) return out
  }
  const norm = normalizeMac(mac)
  if (!norm) throw new RangeError(`invalid MAC address: ${mac}`)
  norm.split(':').forEach((p, i) => { out[i] = parseInt(p, 16) })
  return out
}

export function macFromBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':')
}
