/**
 * Chooses a free subnet (flannel LocalManager.allocateSubnet): walk SubnetMin..SubnetMax in
 * SubnetLen steps, skip candidates overlapping a taken subnet, stop at 100 free ones and pick
 * one uniformly at random. Pure: randomness is injected.
 */
import { WeftError } from '../errors.ts'
import { type IpNet, formatIp, netOverlaps } from '../ip/ip.ts'
import type { FamilyConfig } from '../config/network-config.ts'

/** flannel stops collecting candidates here; enough spread to make races unlikely. */
export const MAX_CANDIDATES = 100

/** Returns a number in [0, 1), like Math.random. */
export type RandomFn = () => number

/**
 * Picks a free subnet of `config.subnetLen` in [subnetMin, subnetMax].
 * @param taken subnets of existing leases (any family; other families are ignored)
 * @throws WeftError LEASE_NO_FREE_SUBNET naming the range when nothing is free
 */
export function allocateSubnet(config: FamilyConfig, taken: readonly IpNet[], random: RandomFn = Math.random): IpNet {
  const family = config.network.family
  const len = config.subnetLen
  const step = 1n << BigInt((family === 4 ? 32 : 128) - len)
  // Same-size subnets are checked in O(1); others (odd sizes, reservations) by overlap.
  const exact = new Set<bigint>()
  const odd: IpNet[] = []
  for (const net of taken) {
    if (net.family !== family) continue
    if (net.prefix === len) exact.add(net.addr)
    else odd.push(net)
  }
  const free: IpNet[] = []
  const max = config.subnetMax.value
  for (let addr = config.subnetMin.value; addr <= max && free.length < MAX_CANDIDATES; addr += step) {
    if (exact.has(addr)) continue
    const candidate: IpNet = { family, addr, prefix: len }
    if (odd.some((net) => netOverlaps(net, candidate))) continue
    free.push(candidate)
  }
  if (free.length === 0) {
    const range = `${formatIp(config.subnetMin)}-${formatIp(config.subnetMax)}`
    throw new WeftError('LEASE_NO_FREE_SUBNET', `out of subnets: no free /${len} in ${range}`, {
      details: { family, subnetLen: len, subnetMin: formatIp(config.subnetMin), subnetMax: formatIp(config.subnetMax) },
    })
  }
  const index = Math.min(free.length - 1, Math.floor(random() * free.length))
  return free[index] as IpNet
}

/** True when `net` is an allocatable subnet under `config` (flannel's isSubnetCompatible). */
export function isSubnetCompatible(config: FamilyConfig, net: IpNet): boolean {
  return (
    net.family === config.network.family &&
    net.prefix === config.subnetLen &&
    net.addr >= config.subnetMin.value &&
    net.addr <= config.subnetMax.value
  )
}
