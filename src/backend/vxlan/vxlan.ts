/**
 * vxlan backend (flannel pkg/backend/vxlan).
 *
 * Design notes (after the header of flannel's vxlan.go):
 * - One VXLAN device per family, `flannel.<VNI>` / `flannel-v6.<VNI>`, with learning off and no
 *   L2/L3-miss upcalls: weft programs every peer statically, so the kernel never floods or asks.
 * - A packet for a remote subnet hits the route `<subnet> via <subnet address> dev flannel.N
 *   onlink`; the permanent neighbour entry turns that gateway into the peer's VTEP MAC; the FDB
 *   entry turns the MAC into the peer's public IP, the outer destination. Entries are installed
 *   in that order (neighbour, FDB, route last) and rolled back on failure, so a route never
 *   points at a half-programmed peer.
 * - The VTEP MAC is published in BackendData `{"VNI":n,"VtepMAC":"…"}` and must survive a
 *   restart, or every peer's FDB/neighbour entries go stale until they re-read our lease. So an
 *   existing compatible device is reused with its MAC; otherwise the MAC of our previous lease
 *   (the lease with our public IP in the store) is reused; only then is a random one chosen.
 * - MTU: the underlay MTU (Backend.MTU, else the interface's) minus the encapsulation: 50 bytes
 *   over IPv4, 70 over IPv6 (flannel uses 50 for both). FLANNEL_MTU is the smallest device MTU.
 * - DirectRouting: a peer whose public IP the kernel reaches without a gateway gets a plain route
 *   via that IP and no encapsulation.
 * - A device deleted by someone is recreated (with the same MAC) and every peer is replayed;
 *   flannel recreates it but forgets the peers.
 */
import { whenAborted } from '../../util/abort.ts'
import { randomBytes } from '../../util/random-bytes.ts'
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { Family, IpAddr } from '../../ip/ip.ts'
import type { LeaseAttrs } from '../../lease/lease.ts'
import type { VxlanOptions } from './vxlan-options.ts'
import { ConfigError, WeftError } from '../../errors.ts'
import { ipEqual } from '../../ip/ip.ts'
import { familyName, publicIpOf, subnetOf } from '../lease-validation.ts'
import { decodeBackendData, encodeBackendData, macFromRandom } from './backend-data.ts'
import { configureDevice, deviceName, ensureDevice, vxlanOverhead, type VxlanDeviceConfig } from './vxlan-device.ts'
import { VXLAN_TYPE, vxlanNetwork, type VxlanDeviceState } from './vxlan-network.ts'

/** How long registration waits for the store's listing when looking for our previous MAC. */
const PREVIOUS_LEASE_TIMEOUT_MS = 5000

/** Factory registered as `vxlan`. */
export function vxlan(options: VxlanOptions, deps: BackendDeps): Backend {
  return {
    type: VXLAN_TYPE,
    registerNetwork: (config, signal) => registerVxlan(options, deps, config, signal),
  }
}

async function registerVxlan(options: VxlanOptions, deps: BackendDeps, config: NetworkConfig, signal: AbortSignal): Promise<Network> {
  const { extIface, kernel, logger } = deps
  const families: Family[] = [...(config.enableIPv4 ? [4 as const] : []), ...(config.enableIPv6 ? [6 as const] : [])]
  const underlay = options.mtu || extIface.mtu
  const cfgs = families.map((family): VxlanDeviceConfig => {
    const local = family === 4 ? extIface.extAddr : extIface.extV6Addr
    if (!local) {
      throw new WeftError('BACKEND_UNSUPPORTED', `vxlan: no ${familyName(family)} public address on ${extIface.name} for ${deviceName(family, options.vni)}`)
    }
    const name = deviceName(family, options.vni)
    // Linux link names hold 15 characters (IFNAMSIZ − 1); flannel just fails at creation.
    if (name.length > 15) {
      throw new ConfigError('Backend.VNI', `the device name ${name} is longer than the 15 characters Linux allows; use a VNI below ${family === 6 ? 10_000 : 10_000_000}`)
    }
    const mtu = underlay - vxlanOverhead(family)
    if (mtu < (family === 6 ? 1280 : 68)) {
      throw new ConfigError('Backend.MTU', `the underlay MTU ${underlay} leaves ${mtu} for ${familyName(family)} pods, below the ${family === 6 ? 1280 : 68} minimum`)
    }
    return { family, name, vni: options.vni, port: options.port, gbp: options.gbp, learning: options.learning, local, parentIndex: extIface.index, mtu }
  })

  // Listing the store costs (thousands of leases): only when a device has to be created.
  let previous: Promise<Map<Family, string>> | undefined
  const devices = new Map<Family, VxlanDeviceState>()
  for (const cfg of cfgs) {
    const fallback = async (): Promise<string> => (await (previous ??= previousMacs(deps, families, signal))).get(cfg.family) ?? macFromRandom(randomBytes(6))
    const ensured = await ensureDevice(kernel, cfg, fallback, logger)
    devices.set(cfg.family, { cfg, link: ensured.link, mac: ensured.mac })
  }

  const v4 = devices.get(4)
  const v6 = devices.get(6)
  const attrs: LeaseAttrs = {
    ...(v4 ? { publicIP: v4.cfg.local, backendData: encodeBackendData({ vni: options.vni, vtepMac: v4.mac }) } : {}),
    ...(v6 ? { publicIPv6: v6.cfg.local, backendV6Data: encodeBackendData({ vni: options.vni, vtepMac: v6.mac }) } : {}),
    backendType: VXLAN_TYPE,
  }
  const lease = await deps.subnetManager.acquireLease(config, attrs, signal)
  for (const [family, dev] of devices) {
    const subnet = subnetOf(lease, family)
    if (!subnet) throw new WeftError('LEASE_INVALID', `vxlan: the acquired lease has no ${familyName(family)} subnet`)
    const network = family === 4 ? config.ipv4?.network : config.ipv6?.network
    await configureDevice(kernel, dev.link, subnet, network, dev.mac, logger)
  }
  return vxlanNetwork(config, lease, deps, options, devices)
}

/**
 * The VTEP MACs of our previous lease (the one carrying our public IP), read from one listing
 * of the store. Best effort: no listing within the timeout means no previous MAC.
 */
async function previousMacs(deps: BackendDeps, families: readonly Family[], signal: AbortSignal): Promise<Map<Family, string>> {
  const found = new Map<Family, string>()
  const ac = new AbortController()
  const unlisten = whenAborted(signal, () => ac.abort(signal.reason))
  try {
    const timeout = deps.clock.sleep(PREVIOUS_LEASE_TIMEOUT_MS, ac.signal).then(() => undefined, () => undefined)
    const leases = await Promise.race([deps.subnetManager.listLeases(ac.signal), timeout])
    if (!leases) return found
    for (const family of families) {
      const own = family === 4 ? deps.extIface.extAddr : deps.extIface.extV6Addr
      const mine = leases.find((l) => l.attrs.backendType === VXLAN_TYPE && ipEqual(publicIpOf(l, family), own as IpAddr))
      const decoded = mine && decodeBackendData(family === 4 ? mine.attrs.backendData : mine.attrs.backendV6Data)
      if (decoded?.ok) found.set(family, decoded.data.vtepMac)
    }
  } catch (err) {
    if (signal.aborted) throw signal.reason
    deps.logger.debug('could not list leases to find our previous VTEP MAC', {}, err)
  } finally {
    unlisten()
    ac.abort()
  }
  return found
}
