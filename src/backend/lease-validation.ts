/**
 * Checks a remote lease before any of it reaches the kernel (pure). flannel programs whatever
 * the store says; a lease that overlaps our own subnet or names our own address as its gateway
 * would hijack local traffic, so weft refuses it and says why.
 */
import type { Family, IpAddr, IpNet } from '../ip/ip.ts'
import type { Lease } from '../lease/lease.ts'
import { formatCidr, formatIp, ipEqual, isUnicast, netContainsNet, netEqual, netMask, netOverlaps } from '../ip/ip.ts'

export interface LeaseCheckContext {
  /** Our backend type: leases of another type are ignored, not programmed. */
  readonly backendType: string
  /** Enabled families; the first one keys the lease. */
  readonly families: readonly Family[]
  /** The flannel Network per enabled family. */
  readonly networks: Readonly<Partial<Record<Family, IpNet>>>
  /** This host's lease (subnets and public addresses). */
  readonly own: Lease
}

/** `ignored` = another backend's lease (a warning, not an error); `invalid` = refused with a reason. */
export type LeaseVerdict = { readonly ok: true } | { readonly ok: false; readonly ignored: boolean; readonly reason: string }

/** 'IPv4' / 'IPv6', for messages. */
export const familyName = (family: Family): string => (family === 4 ? 'IPv4' : 'IPv6')

/** The lease's subnet in `family`. */
export function subnetOf(lease: Lease, family: Family): IpNet | undefined {
  return family === 4 ? lease.subnet : lease.ipv6Subnet
}

/** The lease's public IP in `family`. */
export function publicIpOf(lease: Lease, family: Family): IpAddr | undefined {
  return family === 4 ? lease.attrs.publicIP : lease.attrs.publicIPv6
}

/** The key a peer is tracked under: its subnet in the first enabled family (flannel's subnet key). */
export function leaseKey(lease: Lease, families: readonly Family[]): string | undefined {
  const first = families[0]
  if (first === undefined) return undefined
  // Asked for several times per lease per batch; formatting 5,000 CIDRs each time shows up.
  let cached = keyCache.get(lease)
  if (!cached) keyCache.set(lease, (cached = {}))
  if (!(first in cached)) {
    const net = subnetOf(lease, first)
    cached[first] = net && formatCidr(net)
  }
  return cached[first]
}

const keyCache = new WeakMap<Lease, Partial<Record<Family, string | undefined>>>()

/** Families of `lease` that carry a subnet and are enabled here. */
export function leaseFamilies(lease: Lease, families: readonly Family[]): Family[] {
  return families.filter((f) => subnetOf(lease, f) !== undefined)
}

/**
 * Subnets of accepted peers, for overlap checks that stay fast with thousands of peers:
 * buckets per (family, prefix) keyed by network address, so a same-size lookup is O(1).
 */
export class SubnetIndex {
  private readonly buckets = new Map<string, { family: Family; prefix: number; owners: Map<bigint, string> }>()

  add(net: IpNet, owner: string): void {
    const id = `${net.family}/${net.prefix}`
    let bucket = this.buckets.get(id)
    if (!bucket) this.buckets.set(id, (bucket = { family: net.family, prefix: net.prefix, owners: new Map() }))
    bucket.owners.set(net.addr, owner)
  }

  delete(net: IpNet, owner: string): void {
    const bucket = this.buckets.get(`${net.family}/${net.prefix}`)
    if (bucket?.owners.get(net.addr) === owner) bucket.owners.delete(net.addr)
  }

  /** Owner of an indexed subnet overlapping `net`, other than `except`. */
  findOverlap(net: IpNet, except: string): string | undefined {
    for (const { family, prefix, owners } of this.buckets.values()) {
      if (family !== net.family || owners.size === 0) continue
      if (prefix <= net.prefix) {
        // A bigger (or equal) indexed subnet can contain `net`: mask and look it up.
        const owner = owners.get(net.addr & netMask(family, prefix))
        if (owner !== undefined && owner !== except) return owner
        continue
      }
      // Smaller indexed subnets inside `net` (rare: mixed subnet sizes).
      for (const [addr, owner] of owners) {
        if (owner !== except && netOverlaps(net, { family, addr, prefix })) return owner
      }
    }
    return undefined
  }
}

/**
 * Decides whether a remote lease may be programmed. `accepted` indexes the peers already
 * programmed (their key is `leaseKey`); a lease never conflicts with its own earlier version.
 */
export function checkLease(ctx: LeaseCheckContext, lease: Lease, accepted: SubnetIndex): LeaseVerdict {
  if (lease.attrs.backendType !== ctx.backendType) {
    return { ok: false, ignored: true, reason: `lease has backend type "${lease.attrs.backendType}", not "${ctx.backendType}"` }
  }
  const key = leaseKey(lease, ctx.families)
  const first = ctx.families[0]
  if (key === undefined || first === undefined) {
    return invalid(`lease has no ${familyName(first ?? 4)} subnet`)
  }
  for (const family of leaseFamilies(lease, ctx.families)) {
    const subnet = subnetOf(lease, family) as IpNet
    const name = familyName(family)
    const network = ctx.networks[family]
    if (network && !netContainsNet(network, subnet)) {
      return invalid(`${name} subnet ${formatCidr(subnet)} is outside the network ${formatCidr(network)}`)
    }
    const ownSubnet = subnetOf(ctx.own, family)
    if (ownSubnet && netOverlaps(ownSubnet, subnet)) {
      return invalid(`${name} subnet ${formatCidr(subnet)} overlaps this host's subnet ${formatCidr(ownSubnet)}`)
    }
    const other = accepted.findOverlap(subnet, key)
    if (other !== undefined) {
      return invalid(`${name} subnet ${formatCidr(subnet)} overlaps the lease of ${other}`)
    }
    const publicIp = publicIpOf(lease, family)
    if (!publicIp) return invalid(`lease has an ${name} subnet but no ${name} public IP`)
    if (publicIp.family !== family || !isUnicast(publicIp)) {
      return invalid(`public IP ${formatIp(publicIp)} is not a unicast ${name} address`)
    }
    if (ipEqual(publicIp, publicIpOf(ctx.own, family))) {
      return invalid(`public IP ${formatIp(publicIp)} is this host's own public IP`)
    }
  }
  return { ok: true }
}

function invalid(reason: string): LeaseVerdict {
  return { ok: false, ignored: false, reason }
}

/** True when two versions of a lease would program the same state (a renewal re-delivers it). */
export function sameLease(a: Lease, b: Lease): boolean {
  if (a === b) return true
  const x = a.attrs
  const y = b.attrs
  return netEqual(a.subnet, b.subnet) && netEqual(a.ipv6Subnet, b.ipv6Subnet) && x.backendType === y.backendType &&
    ipEqual(x.publicIP, y.publicIP) && ipEqual(x.publicIPv6, y.publicIPv6) &&
    JSON.stringify(x.backendData) === JSON.stringify(y.backendData) && JSON.stringify(x.backendV6Data) === JSON.stringify(y.backendV6Data)
}

/** `10.5.3.0/24 (192.168.1.3)` for logs. */
export function describeLease(lease: Lease): string {
  const parts: string[] = []
  for (const family of [4, 6] as const) {
    const net = subnetOf(lease, family)
    const ip = publicIpOf(lease, family)
    if (net || ip) parts.push(`${net ? formatCidr(net) : '-'} (${ip ? formatIp(ip) : '-'})`)
  }
  return parts.join(' ') || 'empty lease'
}
