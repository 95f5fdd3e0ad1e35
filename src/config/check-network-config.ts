/**
 * Port of flannel's CheckNetworkConfig (pkg/subnet/config.go): semantic checks and computed
 * defaults for one address family. Pure; used in etcd mode only (the kube manager ignores
 * SubnetLen/Min/Max, as flannel does).
 */
import { formatCidr, formatIp, netContainsIp, netMask, netSize, type Family, type IpAddr, type IpNet } from '../ip/ip.ts'
import type { FamilyConfig } from './network-config.ts'
import { FieldError } from './field-error.ts'

/** One family's fields as decoded from JSON; 0 / undefined mean "not given". */
export interface RawFamily {
  readonly network?: IpNet
  readonly subnetLen: number
  readonly subnetMin?: IpAddr
  readonly subnetMax?: IpAddr
}

interface Rules {
  readonly network: string
  readonly subnetLen: string
  readonly subnetMin: string
  readonly subnetMax: string
  /** Largest SubnetLen allowed (a subnet needs room for a tunnel and a bridge address). */
  readonly maxSubnetLen: number
  /** Longest network prefix for which defaults are computed (four subnets of four addresses). */
  readonly maxNetworkPrefix: number
  readonly defaultSubnetLen: number
}

const RULES: Readonly<Record<Family, Rules>> = {
  4: { network: 'Network', subnetLen: 'SubnetLen', subnetMin: 'SubnetMin', subnetMax: 'SubnetMax', maxSubnetLen: 30, maxNetworkPrefix: 28, defaultSubnetLen: 24 },
  6: { network: 'IPv6Network', subnetLen: 'IPv6SubnetLen', subnetMin: 'IPv6SubnetMin', subnetMax: 'IPv6SubnetMax', maxSubnetLen: 126, maxNetworkPrefix: 124, defaultSubnetLen: 64 },
}

/** Validates one family and fills SubnetLen/SubnetMin/SubnetMax defaults; throws FieldError. */
export function checkFamily(family: Family, raw: RawFamily): FamilyConfig {
  const r = RULES[family]
  const network = raw.network
  // flannel's IP4Net.Empty(): an absent value and 0.0.0.0/0 are the same thing.
  if (!network || (network.addr === 0n && network.prefix === 0)) {
    const got = network ? `got ${formatCidr(network)}` : `${r.network} is missing`
    throw new FieldError(r.network, `please define a correct ${r.network} parameter in the flannel config: ${got}`)
  }
  const subnetLen = resolveSubnetLen(r, network, raw.subnetLen)
  const size = 1n << BigInt((family === 4 ? 32 : 128) - subnetLen)
  // The first subnet is skipped: a host holding the network address itself confuses tools.
  const subnetMin = raw.subnetMin ?? { family, value: network.addr + size }
  const subnetMax = raw.subnetMax ?? { family, value: network.addr + netSize(network) - size }
  for (const [field, ip] of [[r.subnetMin, raw.subnetMin], [r.subnetMax, raw.subnetMax]] as const) {
    if (ip && !netContainsIp(network, ip)) {
      throw new FieldError(field, `${field} is not in the range of the ${r.network}: ${formatIp(ip)} is outside ${formatCidr(network)}`)
    }
  }
  const mask = netMask(family, subnetLen)
  for (const [field, ip] of [[r.subnetMin, subnetMin], [r.subnetMax, subnetMax]] as const) {
    if ((ip.value & mask) !== ip.value) {
      throw new FieldError(field, `${field} is not on a SubnetLen boundary: ${formatIp(ip)} (${r.subnetLen} ${subnetLen})`)
    }
  }
  // flannel accepts this and then fails every allocation; refuse it up front.
  if (subnetMin.value > subnetMax.value) {
    throw new FieldError(r.subnetMin, `${r.subnetMin} ${formatIp(subnetMin)} is greater than ${r.subnetMax} ${formatIp(subnetMax)}: no subnet can be allocated`)
  }
  return Object.freeze({ network, subnetLen, subnetMin, subnetMax })
}

function resolveSubnetLen(r: Rules, network: IpNet, given: number): number {
  if (given > 0) {
    if (given > r.maxSubnetLen) {
      throw new FieldError(r.subnetLen, `${r.subnetLen} must be less than /${r.maxSubnetLen + 1}, got ${given}`)
    }
    if (given < network.prefix + 2) {
      throw new FieldError(r.subnetLen, `network must be able to accommodate at least four subnets: ${r.subnetLen} ${given} with ${r.network} ${formatCidr(network)} (${r.subnetLen} must be at least ${network.prefix + 2})`)
    }
    return given
  }
  if (network.prefix > r.maxNetworkPrefix) {
    const what = r.network === 'Network' ? 'network' : r.network
    throw new FieldError(r.network, `${what} is too small. Minimum useful network prefix is /${r.maxNetworkPrefix}: ${r.network} ${formatCidr(network)}`)
  }
  // Big enough for the default (/24, /64) with at least four subnets; else split into four.
  return network.prefix <= r.defaultSubnetLen - 2 ? r.defaultSubnetLen : network.prefix + 2
}
