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

export function macToBytes(mac: string): Uint8Array {
  const norm = normalizeMac(mac)
  if (!norm) throw new RangeError(`invalid MAC address: ${mac}`)
  return Uint8Array.from(norm.split(':').map((p) => parseInt(p, 16)))
}

export function macFromBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':')
}
