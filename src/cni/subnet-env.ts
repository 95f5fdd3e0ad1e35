/**
 * Reader for subnet.env (flannel's /run/flannel/subnet.env), the file the CNI plugin and the
 * traffic manager's rule recycling consume. Pure: text in, values out.
 */
import { parseCidr, parseIpWithPrefix, type IpAddr, type IpNet } from '../ip/ip.ts'
import { WeftError } from '../errors.ts'

export interface SubnetEnv {
  /** FLANNEL_NETWORK */
  readonly network?: IpNet
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
  const net = (key: string): IpNet | undefined => {
    const v = env.get(key)
    return v === undefined || v === '' ? undefined : parseCidr(v) ?? bad(key, 'is not a CIDR')
  }
  const ipNet = (key: string): { ip: IpAddr; net: IpNet } | undefined => {
    const v = env.get(key)
    return v === undefined || v === '' ? undefined : parseIpWithPrefix(v) ?? bad(key, 'is not an address/prefix')
  }
  const out: { -readonly [K in keyof SubnetEnv]: SubnetEnv[K] } = {}
  const network = net('FLANNEL_NETWORK')
  if (network) out.network = network
  const subnet = ipNet('FLANNEL_SUBNET')
  if (subnet) out.subnet = subnet
  const ipv6Network = net('FLANNEL_IPV6_NETWORK')
  if (ipv6Network) out.ipv6Network = ipv6Network
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
