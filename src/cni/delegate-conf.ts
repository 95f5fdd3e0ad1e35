/**
 * The delegate network config the weft plugin hands to `bridge` + `host-local`: a port of
 * flannel-cni-plugin's doCmdAdd/getDelegateIPAM. Pure: netconf + subnet.env in, JSON object out.
 * Every key the operator set in `delegate`/`ipam` wins over the computed default.
 */
import { formatCidr, formatIp, type IpAddr, type IpNet } from '../ip/ip.ts'
import type { SubnetEnv } from './subnet-env.ts'

export type Json = Record<string, unknown>

/** The plugin's own network config (flannel-compatible keys plus weft's wait option). */
export interface WeftNetConf {
  readonly cniVersion: string
  readonly name: string
  readonly type: string
  /** Default /run/flannel/subnet.env. */
  readonly subnetFile: string
  /** Where the delegate config of each container is kept for DEL/CHECK; default /var/lib/cni/flannel. */
  readonly dataDir: string
  /** Seconds to wait for a missing subnet.env on ADD; default 0 (fail fast). */
  readonly subnetFileWaitSeconds: number
  readonly delegate: Json
  readonly ipam?: Json
  readonly runtimeConfig?: Json
  readonly prevResult?: Json
}

/** Builds the delegate config for ADD. */
export function buildDelegateConf(conf: WeftNetConf, env: SubnetEnv): Json {
  const d: Json = { ...conf.delegate }
  d.name = conf.name
  if (d.type === undefined) d.type = 'bridge'
  // flannel semantics: when weft masquerades (FLANNEL_IPMASQ=true) the bridge must not, and vice versa
  if (d.ipMasq === undefined) d.ipMasq = !(env.ipMasq ?? false)
  if (d.mtu === undefined && env.mtu !== undefined) d.mtu = env.mtu
  if (d.type === 'bridge' && d.isGateway === undefined) d.isGateway = true
  d.cniVersion = conf.cniVersion
  if (conf.runtimeConfig !== undefined) d.runtimeConfig = conf.runtimeConfig
  d.ipam = delegateIpam(conf, env, d.type === 'bridge' && d.isGateway === true)
  return d
}

function delegateIpam(conf: WeftNetConf, env: SubnetEnv, viaBridge: boolean): Json {
  const ipam: Json = { ...(conf.ipam ?? {}) }
  if (ipam.type === undefined) ipam.type = 'host-local'
  const ranges: Json[][] = []
  if (env.subnet) ranges.push([{ subnet: formatCidr(env.subnet.net) }])
  if (env.ipv6Subnet) ranges.push([{ subnet: formatCidr(env.ipv6Subnet.net) }])
  ipam.ranges = ranges
  const routes: Json[] = Array.isArray(ipam.routes) ? [...(ipam.routes as Json[])] : []
  // flannel writes only `dst`; the bridge then routes via its gateway (FLANNEL_SUBNET's address)
  // anyway, but bridge plugins before containernetworking/plugins#887 fail CHECK on a route
  // without `gw`, so weft names the gateway the route gets in any case
  const route = (net: IpNet, gw: IpAddr | undefined): Json => (viaBridge && gw ? { dst: formatCidr(net), gw: formatIp(gw) } : { dst: formatCidr(net) })
  for (const net of env.networks ?? (env.network ? [env.network] : [])) routes.push(route(net, env.subnet?.ip))
  for (const net of env.ipv6Networks ?? (env.ipv6Network ? [env.ipv6Network] : [])) routes.push(route(net, env.ipv6Subnet?.ip))
  ipam.routes = routes
  return ipam
}
