/**
 * flannel's iptables rules as pure data (port of pkg/trafficmngr/iptables masqRules /
 * forwardRules). Each rule's `spec` is written in iptables-save's canonical form, so the same
 * text is fed to iptables-restore and compared against iptables-save output.
 */
import { formatCidr, type Family, type IpNet } from '../ip/ip.ts'
import type { TrafficIntent } from './firewall.ts'

export type IpTable = 'nat' | 'filter'

export interface IpTablesRule {
  readonly table: IpTable
  readonly chain: string
  /** Everything after `-A <chain> `, in iptables-save form. */
  readonly spec: string
}

export const MASQ_CHAIN = 'FLANNEL-POSTRTG'
export const FORWARD_CHAIN = 'FLANNEL-FWD'
/** kube-proxy marks packets it will masquerade itself; flannel must leave them alone. */
export const KUBE_PROXY_MARK = '0x4000/0x4000'
const MASQ_COMMENT = '-m comment --comment "flanneld masq"'
const FORWARD_COMMENT = '-m comment --comment "flanneld forward"'

/** Multicast range that is never masqueraded. */
export function multicastNet(family: Family): string {
  return family === 4 ? '224.0.0.0/4' : 'ff00::/8'
}

/** The masquerade rules, jump rule first, in flannel's exact order. */
export function masqRules(family: Family, network: IpNet, subnet: IpNet, randomFully: boolean): IpTablesRule[] {
  const net = formatCidr(network)
  const pod = formatCidr(subnet)
  const rf = randomFully ? ' --random-fully' : ''
  const r = (spec: string): IpTablesRule => ({ table: 'nat', chain: MASQ_CHAIN, spec })
  return [
    { table: 'nat', chain: 'POSTROUTING', spec: `${MASQ_COMMENT} -j ${MASQ_CHAIN}` },
    // kube-proxy will masquerade these itself
    r(`-m mark --mark ${KUBE_PROXY_MARK} ${MASQ_COMMENT} -j RETURN`),
    // pod to pod inside the cluster network keeps its source
    r(`-s ${pod} -d ${net} ${MASQ_COMMENT} -j RETURN`),
    r(`-s ${net} -d ${pod} ${MASQ_COMMENT} -j RETURN`),
    // traffic from outside to this host's pods (e.g. NodePort) is not touched
    r(`! -s ${net} -d ${pod} ${MASQ_COMMENT} -j RETURN`),
    // pods leaving the cluster network, except multicast
    r(`-s ${net} ! -d ${multicastNet(family)} ${MASQ_COMMENT} -j MASQUERADE${rf}`),
    // host/outside traffic into the cluster network gets a cluster-routable source
    r(`! -s ${net} -d ${net} ${MASQ_COMMENT} -j MASQUERADE${rf}`),
  ]
}

/** The forward-accept rules, jump rule first. */
export function forwardRules(network: IpNet): IpTablesRule[] {
  const net = formatCidr(network)
  return [
    { table: 'filter', chain: 'FORWARD', spec: `${FORWARD_COMMENT} -j ${FORWARD_CHAIN}` },
    { table: 'filter', chain: FORWARD_CHAIN, spec: `-s ${net} ${FORWARD_COMMENT} -j ACCEPT` },
    { table: 'filter', chain: FORWARD_CHAIN, spec: `-d ${net} ${FORWARD_COMMENT} -j ACCEPT` },
  ]
}

/** Every rule the intent asks for, masquerade first. */
export function intentRules(intent: TrafficIntent): IpTablesRule[] {
  return [
    ...(intent.masq ? masqRules(intent.family, intent.network, intent.subnet, intent.randomFully) : []),
    ...(intent.forward ? forwardRules(intent.network) : []),
  ]
}

/** The `-A CHAIN spec` line as iptables-save prints it. */
export function ruleLine(rule: IpTablesRule): string {
  return `-A ${rule.chain} ${rule.spec}`
}

/** True for the chains weft owns (flushed and refilled on apply). */
export function isOwnChain(chain: string): boolean {
  return chain === MASQ_CHAIN || chain === FORWARD_CHAIN
}
