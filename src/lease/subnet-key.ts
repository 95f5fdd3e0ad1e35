/**
 * etcd key names for leases: `10.5.3.0-24`, or `10.12.13.0-24&fd00:12:13::-56` when dual-stack
 * (flannel pkg/subnet MakeSubnetKey / ParseSubnetKey).
 */
import { type IpNet, bitsOf, formatIp, netMask, parseIp } from '../ip/ip.ts'

/** The subnets named by one key. */
export interface SubnetKeyParts {
  readonly subnet: IpNet
  readonly ipv6Subnet?: IpNet
}

// flannel's pattern, with the dots escaped and anchored at both ends (flannel anchors only the end).
const KEY = /^(\d+\.\d+\.\d+\.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/

/** Formats the key for a lease's subnets (the last path segment under `<prefix>/subnets/`). */
export function formatSubnetKey(subnet: IpNet, ipv6Subnet?: IpNet): string {
  const v4 = `${formatIp({ family: 4, value: subnet.addr })}-${subnet.prefix}`
  if (!ipv6Subnet) return v4
  return `${v4}&${formatIp({ family: 6, value: ipv6Subnet.addr })}-${ipv6Subnet.prefix}`
}

/**
 * Parses a key (or a full etcd path: only the last segment counts). Returns undefined for
 * anything that is not a canonical subnet key: flannel skips such keys as "not a subnet".
 */
export function parseSubnetKey(key: string): SubnetKeyParts | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1)
  const m = KEY.exec(name)
  if (!m) return undefined
  const subnet = toNet(m[1] as string, m[2] as string, 4)
  if (!subnet) return undefined
  if (m[3] === undefined) return { subnet }
  const ipv6Subnet = toNet(m[3], m[4] as string, 6)
  return ipv6Subnet ? { subnet, ipv6Subnet } : undefined
}

function toNet(ipText: string, prefixText: string, family: 4 | 6): IpNet | undefined {
  const ip = parseIp(ipText)
  if (!ip || ip.family !== family || prefixText.length > 3) return undefined
  const prefix = Number(prefixText)
  if (prefix > bitsOf(family)) return undefined
  // Host bits set means the key was not written by flannel or weft: treat it as garbage.
  if ((ip.value & netMask(family, prefix)) !== ip.value) return undefined
  return { family, addr: ip.value, prefix }
}
