/**
 * Reader for subnet.env (flannel's /run/flannel/subnet.env), the file the CNI plugin and the
 * traffic manager's rule recycling consume. Pure: text in, values out.
 */
import { parseCidr, parseIpWithPrefix, type IpAddr, type IpNet } from '../ip/ip.ts'
import { WeftError } from '../errors.ts'

export interface SubnetEnv {
  /** FLANNEL_NETWORK (the first, when the file lists several comma-separated) */
  readonly network?: IpNet
  /** Every network of FLANNEL_NETWORK (newer flannel may write a comma-separated list). */
  readonly networks?: readonly IpNet[]
  readonly ipv6Networks?: readonly IpNet[]
  /** FLANNEL_SUBNET as written (e.g. 10.5.72.1/24): `ip` is the gateway, `net` the masked subnet. */
  readonly subnet?: { readonly ip: IpAddr; readonly net: IpNet }
  readonly ipv6Network?: IpNet
  readonly ipv6Subnet?: { readonly ip: IpAddr; readonly net: IpNet }
  readonly mtu?: number
  readonly ipMasq?: boolean
}

/** Parses KEY=VALUE lines (optional quotes, `#` comments, `export ` prefix as godotenv allows). */
export function parseEnvLines(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/^export\s+/, '')
    if (line === '' || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    let value = line.slice(eq + 1).trim()
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1)
    out.set(line.slice(0, eq).trim(), value)
  }
  return out
}

/** Parses subnet.env; a present but malformed value throws INVALID_INPUT naming the key. */
export function parseSubnetEnv(text: string): SubnetEnv {
  const env = parseEnvLines(text)
  const bad = (key: string, rule: string): never => {
    throw new WeftError('INVALID_INPUT', `subnet.env ${key} ${rule}: ${env.get(key)}`, { details: { key } })
  }
  const nets = (key: string): IpNet[] => {
    const v = env.get(key)
    if (v === undefined || v === '') return []
    return v.split(',').map((part) => parseCidr(part.trim()) ?? bad(key, 'is not a CIDR (or comma-separated CIDRs)'))
  }
  const ipNet = (key: string): { ip: IpAddr; net: IpNet } | undefined => {
    const v = env.get(key)
    return v === undefined || v === '' ? undefined : parseIpWithPrefix(v) ?? bad(key, 'is not an address/prefix')
  }
  const out: { -readonly [K in keyof SubnetEnv]: SubnetEnv[K] } = {}
  const networks = nets('FLANNEL_NETWORK')
  if (networks.length > 0) Object.assign(out, { network: networks[0], networks })
  const subnet = ipNet('FLANNEL_SUBNET')
  if (subnet) out.subnet = subnet
  const ipv6Networks = nets('FLANNEL_IPV6_NETWORK')
  if (ipv6Networks.length > 0) Object.assign(out, { ipv6Network: ipv6Networks[0], ipv6Networks })
  const ipv6Subnet = ipNet('FLANNEL_IPV6_SUBNET')
  if (ipv6Subnet) out.ipv6Subnet = ipv6Subnet
  const mtu = env.get('FLANNEL_MTU')
  if (mtu !== undefined && mtu !== '') {
    if (!/^\d+$/.test(mtu) || Number(mtu) < 68 || Number(mtu) > 65535) bad('FLANNEL_MTU', 'is not an MTU in 68..65535')
    out.mtu = Number(mtu)
  }
  const masq = env.get('FLANNEL_IPMASQ')
  if (masq !== undefined && masq !== '') {
    if (masq !== 'true' && masq !== 'false') bad('FLANNEL_IPMASQ', 'is not true or false')
    out.ipMasq = masq === 'true'
  }
  return out
}

/** flannel-cni's completeness rule: the keys a CNI ADD cannot do without ('' when complete). */
export function missingSubnetEnvKeys(env: SubnetEnv): string[] {
  const m: string[] = []
  if (!env.network && !env.ipv6Network) m.push('FLANNEL_NETWORK', 'FLANNEL_IPV6_NETWORK')
  if (!env.subnet && !env.ipv6Subnet) m.push('FLANNEL_SUBNET', 'FLANNEL_IPV6_SUBNET')
  if (env.mtu === undefined) m.push('FLANNEL_MTU')
  if (env.ipMasq === undefined) m.push('FLANNEL_IPMASQ')
  return m
}
