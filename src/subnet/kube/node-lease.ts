/**
 * Node ↔ lease, pure (flannel's nodeToLease and the annotation half of AcquireLease). A node is
 * a peer only when a subnet manager marked it (`kube-subnet-manager: "true"`); its lease is its
 * podCIDR(s) plus the public IP and backend data from its annotations.
 */
import { type Family, type IpAddr, type IpNet, formatCidr, formatIp, netContainsNet, parseCidr, parseIp } from '../../ip/ip.ts'
import type { Lease, LeaseAttrs } from '../../lease/lease.ts'
import { goJson } from '../../lease/lease-codec.ts'
import type { AnnotationNames } from './annotations.ts'
import type { KubeNode } from './kube-types.ts'

export type NodeLeaseResult = { readonly ok: true; readonly lease: Lease } | { readonly ok: false; readonly reason: string }

/** The node's podCIDR per family (spec.podCIDRs, else spec.podCIDR), or why they are unusable. */
export function nodePodCidrs(node: KubeNode): { ok: true; v4?: IpNet; v6?: IpNet } | { ok: false; reason: string } {
  const list = node.spec.podCIDRs?.length ? node.spec.podCIDRs : node.spec.podCIDR ? [node.spec.podCIDR] : []
  if (list.length > 2) return { ok: false, reason: `spec.podCIDRs holds ${list.length} CIDRs; at most one IPv4 and one IPv6 are allowed` }
  const out: { ok: true; v4?: IpNet; v6?: IpNet } = { ok: true }
  for (const text of list) {
    const net = safeParseCidr(text)
    if (!net) return { ok: false, reason: `spec.podCIDRs: "${text.slice(0, 64)}" is not a CIDR` }
    const key = net.family === 4 ? 'v4' : 'v6'
    if (out[key]) return { ok: false, reason: `spec.podCIDRs holds two IPv${net.family} CIDRs` }
    out[key] = net
  }
  return out
}

/** Whether a subnet manager (flanneld or weftd) marked the node as one of its hosts. */
export function isManagedNode(node: KubeNode, names: AnnotationNames): boolean {
  return node.metadata.annotations?.[names.kubeSubnetManager] === 'true'
}

/** A managed peer node's lease, for the enabled families; a reason instead when its data is bad. */
export function nodeToLease(node: KubeNode, names: AnnotationNames, families: readonly Family[]): NodeLeaseResult {
  const ann = node.metadata.annotations ?? {}
  const cidrs = nodePodCidrs(node)
  if (!cidrs.ok) return cidrs
  const attrs: { -readonly [K in keyof LeaseAttrs]: LeaseAttrs[K] } = { backendType: ann[names.backendType] ?? '' }
  const lease: { -readonly [K in keyof Lease]: Lease[K] } = { attrs }
  for (const family of families) {
    const subnet = family === 4 ? cidrs.v4 : cidrs.v6
    if (!subnet) return { ok: false, reason: `spec.podCIDRs has no IPv${family} CIDR` }
    const ipName = family === 4 ? names.publicIp : names.publicIpv6
    const ip = safeParseIp(ann[ipName])
    if (!ip || ip.family !== family) return { ok: false, reason: `annotation ${ipName}: "${(ann[ipName] ?? '').slice(0, 64)}" is not an IPv${family} address` }
    const dataName = family === 4 ? names.backendData : names.backendV6Data
    const data = parseJsonAnnotation(ann[dataName])
    if (!data.ok) return { ok: false, reason: `annotation ${dataName}: not valid JSON` }
    if (family === 4) {
      lease.subnet = subnet
      attrs.publicIP = ip
      if (data.value !== undefined) attrs.backendData = data.value
    } else {
      lease.ipv6Subnet = subnet
      attrs.publicIPv6 = ip
      if (data.value !== undefined) attrs.backendV6Data = data.value
    }
  }
  return { ok: true, lease }
}

/** Why the own node's podCIDRs do not fit the net-conf networks, or undefined when they do. */
export function checkOwnCidrs(nodeName: string, cidrs: { v4?: IpNet; v6?: IpNet }, networks: { v4?: IpNet; v6?: IpNet }): string | undefined {
  for (const [family, cidr, network] of [[4, cidrs.v4, networks.v4], [6, cidrs.v6, networks.v6]] as const) {
    if (!network) continue
    if (!cidr) return `node "${nodeName}": spec.podCIDRs has no IPv${family} CIDR, but net-conf.json enables IPv${family} (${formatCidr(network)})`
    if (!netContainsNet(network, cidr)) {
      return `subnet "${formatCidr(network)}" specified in the flannel net config doesn't contain "${formatCidr(cidr)}" ${family === 6 ? 'IPv6 ' : ''}PodCIDR of the "${nodeName}" node`
    }
  }
  return undefined
}

/**
 * The annotations this host must carry, as flanneld's AcquireLease writes them: backend-type,
 * backend-data (vxlan only when it has data; other backends always, `null` when none), public-ip
 * (or the value of public-ip-overwrite), the v6 pair where flannel writes it, and the marker.
 * Returns only the entries whose current value differs: an empty object means no patch.
 */
export function annotationChanges(node: KubeNode, attrs: LeaseAttrs, names: AnnotationNames): Record<string, string> {
  const ann = node.metadata.annotations ?? {}
  const want: Record<string, string> = { [names.backendType]: attrs.backendType }
  const v4Data = rawJson(attrs.backendData)
  const v6Data = rawJson(attrs.backendV6Data)
  const type = attrs.backendType
  if (type !== 'vxlan' || v4Data !== 'null') {
    want[names.backendData] = v4Data
    want[names.publicIp] = ann[names.publicIpOverwrite] || ipText(attrs.publicIP, '0.0.0.0')
  }
  const hasV6 = attrs.publicIPv6 !== undefined
  if ((type === 'vxlan' && v6Data !== 'null') || (type === 'wireguard' && v6Data !== 'null' && hasV6) || ((type === 'host-gw' || type === 'extension') && hasV6)) {
    want[names.backendV6Data] = v6Data
    want[names.publicIpv6] = ann[names.publicIpv6Overwrite] || ipText(attrs.publicIPv6, '<nil>')
  }
  want[names.kubeSubnetManager] = 'true'
  const changes: Record<string, string> = {}
  for (const [key, value] of Object.entries(want)) if (ann[key] !== value) changes[key] = value
  return changes
}

/** The node's own public addresses set by an operator (node-public-ip[v6]); override --public-ip. */
export function storedPublicIps(node: KubeNode, names: AnnotationNames): { v4?: IpAddr; v6?: IpAddr; bad: string[] } {
  const ann = node.metadata.annotations ?? {}
  const out: { v4?: IpAddr; v6?: IpAddr; bad: string[] } = { bad: [] }
  for (const [name, family] of [[names.nodePublicIp, 4], [names.nodePublicIpv6, 6]] as const) {
    const text = ann[name]
    if (!text) continue
    const ip = safeParseIp(text)
    if (ip?.family === family) out[family === 4 ? 'v4' : 'v6'] = ip
    else out.bad.push(`annotation ${name}: "${text.slice(0, 64)}" is not an IPv${family} address`)
  }
  return out
}

// Go's json.RawMessage marshals nil as `null`; weft's backend data is a parsed value.
function rawJson(value: unknown): string {
  return value === undefined ? 'null' : goJson(value)
}

function ipText(ip: IpAddr | undefined, none: string): string {
  return ip ? formatIp(ip) : none
}

/** An annotation holding JSON (backend-data): absent or empty → undefined value. */
export function parseJsonAnnotation(text: string | undefined): { ok: true; value: unknown } | { ok: false } {
  if (text === undefined || text === '') return { ok: true, value: undefined }
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

// ip.ts parses well-formed text only; annotations are anyone's input.
function safeParseIp(text: string | undefined): IpAddr | undefined {
  if (!text || text.length > 64 || (!text.includes(':') && !/^\d{1,3}(\.\d{1,3}){3}$/.test(text))) return undefined
  try {
    return parseIp(text)
  } catch {
    return undefined
  }
}

function safeParseCidr(text: string): IpNet | undefined {
  if (typeof text !== 'string' || text.length > 64 || !/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(text)) return undefined
  try {
    return parseCidr(text)
  } catch {
    return undefined
  }
}
