/**
 * The vxlan Network: plans each peer (BackendData decode, DirectRouting decision) and keeps the
 * devices alive; the shared RouteNetwork does the rest (see route-network.ts).
 */
import type { BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { Family, IpAddr, IpNet } from '../../ip/ip.ts'
import type { KernelEntry } from '../../kernel/apply.ts'
import type { Link } from '../../kernel/kernel.ts'
import type { Lease } from '../../lease/lease.ts'
import type { VxlanOptions } from './vxlan-options.ts'
import { RouteNetwork, type PeerPlan } from '../route-network.ts'
import { familyName, leaseFamilies, publicIpOf, subnetOf } from '../lease-validation.ts'
import { decodeBackendData } from './backend-data.ts'
import { isDirectlyReachable, vxlanPeerEntries } from './desired.ts'
import { configureDevice, ensureDevice, incompatibility, type VxlanDeviceConfig } from './vxlan-device.ts'

/** flannel's BackendType string for this backend. */
export const VXLAN_TYPE = 'vxlan'

/** One family's device as the network tracks it (the link changes when it is recreated). */
export interface VxlanDeviceState {
  readonly cfg: VxlanDeviceConfig
  link: Link
  /** The MAC published in our lease. */
  readonly mac: string
}

/**
 * The Network over registered devices (one per enabled family). `checkIntervalMs` overrides the
 * 10 s periodic check (tests).
 */
export function vxlanNetwork(
  config: NetworkConfig,
  lease: Lease,
  deps: BackendDeps,
  options: VxlanOptions,
  devices: ReadonlyMap<Family, VxlanDeviceState>,
  checkIntervalMs?: number,
): Network & { readonly reconciler: RouteNetwork } {
  const { kernel, logger } = deps
  const families = [...devices.keys()]
  const networks = { ...(config.ipv4 ? { 4: config.ipv4.network } : {}), ...(config.ipv6 ? { 6: config.ipv6.network } : {}) }

  const plan = async (peer: Lease): Promise<PeerPlan> => {
    const entries: KernelEntry[] = []
    for (const family of leaseFamilies(peer, families)) {
      const dev = devices.get(family) as VxlanDeviceState
      const raw = family === 4 ? peer.attrs.backendData : peer.attrs.backendV6Data
      const decoded = decodeBackendData(raw, options.vni)
      if (!decoded.ok) return { ok: false, reason: `${familyName(family)} ${decoded.reason}` }
      const publicIp = publicIpOf(peer, family) as IpAddr
      const direct = options.directRouting && isDirectlyReachable(await kernel.routeGet(publicIp).catch(() => undefined))
      entries.push(...vxlanPeerEntries({ subnet: subnetOf(peer, family) as IpNet, publicIp, vtepMac: decoded.data.vtepMac }, dev.link.index, direct))
    }
    return { ok: true, entries }
  }

  /** Recreates a device someone deleted or replaced (flannel's link watcher), with our MAC; brings it up and puts our MAC back. */
  const ensureDevices = async (): Promise<boolean> => {
    let recreated = false
    for (const [family, dev] of devices) {
      const current = await kernel.getLink(dev.cfg.name)
      const subnet = subnetOf(lease, family) as IpNet
      if (current && current.index === dev.link.index && incompatibility(current, dev.cfg) === undefined) {
        if (current.up && current.mac === dev.mac) continue
        // Set down by someone: the kernel flushed its routes and neighbours (and IPv6 address).
        // MAC changed: peers address our lease's VtepMAC, so the device would drop their packets.
        if (!current.up) logger.warn('vxlan device was set down; bringing it up', { device: dev.cfg.name })
        else logger.warn('vxlan device MAC was changed by someone; restoring it', { device: dev.cfg.name, wanted: dev.mac, got: current.mac })
        await configureDevice(kernel, current, subnet, networks[family], dev.mac, logger)
        recreated = true
        continue
      }
      logger.warn('vxlan device missing or replaced; recreating it', { device: dev.cfg.name })
      const ensured = await ensureDevice(kernel, dev.cfg, async () => dev.mac, logger)
      if (ensured.mac !== dev.mac) await kernel.setLink(ensured.link.index, { mac: dev.mac })
      await configureDevice(kernel, ensured.link, subnet, networks[family], dev.mac, logger)
      dev.link = ensured.link
      recreated = true
    }
    return recreated
  }

  const reconciler = new RouteNetwork(
    { subnetManager: deps.subnetManager, kernel, logger, clock: deps.clock, ...(deps.metrics ? { metrics: deps.metrics } : {}) },
    { backendType: VXLAN_TYPE, families, networks, own: lease, ...(checkIntervalMs === undefined ? {} : { checkIntervalMs }) },
    { plan, ensureDevices, deviceIndexes: () => [...devices.values()].map((d) => d.link.index) },
  )
  const mtu = Math.min(...[...devices.values()].map((d) => d.cfg.mtu))
  return { lease, mtu, reconciler, run: (signal) => reconciler.run(signal) }
}
