/**
 * `weft reserve SUBNET PUBLICIP` / `weft unreserve SUBNET` (flannel Documentation/reservations.md):
 * a subnet key written without a TTL, reused by the host whose PublicIP matches. weftd keeps it
 * a reservation on reuse and renewal (flannel silently turns it into a 24 h lease).
 */
import type { Registry } from '../../subnet/etcd/registry.ts'
import { ConfigError, WeftError } from '../../errors.ts'
import { formatCidr, netOverlaps, parseCidr, parseIp, type IpNet } from '../../ip/ip.ts'
import { formatSubnetKey, parseSubnetKey } from '../../lease/subnet-key.ts'
import { encodeLeaseAttrs } from '../../lease/lease-codec.ts'
import { isSubnetCompatible } from '../../lease/subnet-allocator.ts'
import { parseNetworkConfig } from '../../config/parse-network-config.ts'
import { backendRegistry } from '../../backend/registry.ts'
import { getConfig } from './config.ts'

export async function reserve(registry: Registry, prefix: string, subnetText: string, publicIpText: string, signal: AbortSignal): Promise<string> {
  const subnet = parseSubnetArg(subnetText)
  const publicIP = parseIp(publicIpText)
  if (!publicIP || publicIP.family !== 4) throw new ConfigError('PUBLICIP', `must be an IPv4 address, got ${JSON.stringify(publicIpText)}`, { code: 'USAGE' })
  const { config } = parseNetworkConfig(await getConfig(registry, prefix, signal), backendRegistry)
  if (!config.ipv4 || !isSubnetCompatible(config.ipv4, subnet)) {
    throw new ConfigError('SUBNET', `${formatCidr(subnet)} is not a /${config.ipv4?.subnetLen ?? '?'} subnet inside the network's SubnetMin..SubnetMax, so no host could use it`, { code: 'USAGE' })
  }
  const listing = await registry.listSubnets(prefix, signal)
  for (const entry of listing.entries) {
    const existing = parseSubnetKey(entry.key)
    if (existing && netOverlaps(existing.subnet, subnet)) {
      throw new WeftError('LEASE_CONFLICT', `${formatCidr(subnet)} overlaps the existing ${entry.leaseId === '0' ? 'reservation' : 'lease'} ${entry.key}; remove it first`)
    }
  }
  const key = formatSubnetKey(subnet)
  // TTL 0: the key is created without an etcd lease, which is what makes it a reservation.
  await registry.createSubnet(prefix, key, encodeLeaseAttrs({ publicIP, backendType: '' }), 0, signal)
  return `${prefix}/subnets/${key}`
}

export async function unreserve(registry: Registry, prefix: string, subnetText: string, signal: AbortSignal): Promise<string> {
  const subnet = parseSubnetArg(subnetText)
  const listing = await registry.listSubnets(prefix, signal)
  const entry = listing.entries.find((e) => {
    const parsed = parseSubnetKey(e.key)
    return parsed !== undefined && formatCidr(parsed.subnet) === formatCidr(subnet)
  })
  if (!entry) throw new WeftError('INVALID_INPUT', `no reservation for ${formatCidr(subnet)}`)
  if (entry.leaseId !== '0') throw new WeftError('INVALID_INPUT', `${entry.key} is a lease of a running host, not a reservation; it is left alone`)
  await registry.deleteSubnet(prefix, entry.key, signal)
  return `${prefix}/subnets/${entry.key}`
}

function parseSubnetArg(text: string): IpNet {
  const subnet = parseCidr(text)
  if (!subnet || subnet.family !== 4) throw new ConfigError('SUBNET', `must be an IPv4 CIDR such as 10.5.7.0/24, got ${JSON.stringify(text)}`, { code: 'USAGE' })
  if (formatCidr(subnet) !== text) throw new ConfigError('SUBNET', `has host bits set; did you mean ${formatCidr(subnet)}?`, { code: 'USAGE' })
  return subnet
}
