/**
 * host-gw backend (flannel pkg/backend/hostgw + route_network.go).
 *
 * Design notes:
 * - Every host is a router for its own subnet: a peer's subnet is reached with a plain route via
 *   the peer's public IP on the external interface. No encapsulation, so the MTU is the
 *   interface's and throughput is the underlay's.
 * - That only works when every peer is on-link (one L2 segment). flannel just fails to add the
 *   route otherwise; weft turns the kernel's refusal (ENETUNREACH) into a refusal of the peer
 *   with a message that says host-gw needs L2 adjacency, logged once. The periodic route check
 *   retries it, so a peer that becomes adjacent is programmed.
 * - Behind NAT the advertised public IP is not an address peers can route to on-link, so the
 *   backend refuses to start, with flannel's explanation.
 * - The reconciliation (lease watch, validation, re-assert on netlink notifications and every
 *   10 s, exact removal) is the shared RouteNetwork.
 */
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { Family, IpAddr } from '../../ip/ip.ts'
import type { Lease, LeaseAttrs } from '../../lease/lease.ts'
import type { HostGwOptions } from './host-gw-options.ts'
import { WeftError } from '../../errors.ts'
import type { ApplyFailure } from '../../kernel/apply.ts'
import { isKernelErrno, type KernelError } from '../../kernel/kernel-error.ts'
import { formatIp, ipEqual } from '../../ip/ip.ts'
import { RouteNetwork, type PeerPlan } from '../route-network.ts'
import { familyName } from '../lease-validation.ts'
import { hostGwEntries, notOnLinkReason } from './desired.ts'

/** flannel's BackendType string for this backend. */
export const HOST_GW_TYPE = 'host-gw'

/** flannel's wording, kept so operators can grep for it. */
export const NAT_MESSAGE = "your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend"

/** Factory registered as `host-gw`. */
export function hostGw(_options: HostGwOptions, deps: BackendDeps): Backend {
  return {
    type: HOST_GW_TYPE,
    async registerNetwork(config: NetworkConfig, signal: AbortSignal): Promise<Network> {
      const families = enabledFamilies(config)
      const { extIface } = deps
      for (const family of families) {
        const ext = family === 4 ? extIface.extAddr : extIface.extV6Addr
        const iface = family === 4 ? extIface.ifaceAddr : extIface.ifaceV6Addr
        if (!ext) throw new WeftError('BACKEND_UNSUPPORTED', `host-gw: no ${familyName(family)} address on ${extIface.name}`)
        if (!ipEqual(ext, iface)) {
          throw new WeftError('BACKEND_UNSUPPORTED', NAT_MESSAGE, {
            details: { family: familyName(family), publicIP: formatIp(ext), interfaceIP: iface && formatIp(iface) },
          })
        }
      }
      const attrs: LeaseAttrs = {
        ...(families.includes(4) ? { publicIP: extIface.extAddr as IpAddr } : {}),
        ...(families.includes(6) ? { publicIPv6: extIface.extV6Addr as IpAddr } : {}),
        backendType: HOST_GW_TYPE,
      }
      const lease = await deps.subnetManager.acquireLease(config, attrs, signal)
      return hostGwNetwork(config, lease, deps)
    },
  }
}

function enabledFamilies(config: NetworkConfig): Family[] {
  return [...(config.enableIPv4 ? [4 as const] : []), ...(config.enableIPv6 ? [6 as const] : [])]
}

/** The Network for an acquired lease (exported for tests that bypass acquisition). */
export function hostGwNetwork(config: NetworkConfig, lease: Lease, deps: BackendDeps, checkIntervalMs?: number): Network & { readonly reconciler: RouteNetwork } {
  const families = enabledFamilies(config)
  const { extIface, kernel } = deps
  const logger = deps.logger
  // No `ip route get` per peer: the kernel itself refuses a gateway that is not on-link
  // (ENETUNREACH / EHOSTUNREACH), which explainFailure turns into the L2-adjacency message.
  const plan = async (peer: Lease): Promise<PeerPlan> => ({ ok: true, entries: hostGwEntries(peer, families, extIface.index) })
  const explainFailure = (failure: ApplyFailure): string | undefined => {
    const { entry } = failure
    if (entry.kind !== 'route' || !entry.route.gateway || !isKernelErrno(failure.cause, 'ENETUNREACH', 'EHOSTUNREACH')) return undefined
    return notOnLinkReason(entry.route.gateway, extIface.name, (failure.cause as KernelError).errno)
  }
  const reconciler = new RouteNetwork(
    { subnetManager: deps.subnetManager, kernel, logger, clock: deps.clock, ...(deps.metrics ? { metrics: deps.metrics } : {}) },
    {
      backendType: HOST_GW_TYPE,
      families,
      networks: { ...(config.ipv4 ? { 4: config.ipv4.network } : {}), ...(config.ipv6 ? { 6: config.ipv6.network } : {}) },
      own: lease,
      ...(checkIntervalMs === undefined ? {} : { checkIntervalMs }),
    },
    { plan, explainFailure },
  )
  return { lease, mtu: extIface.mtu, reconciler, run: (signal) => reconciler.run(signal) }
}
