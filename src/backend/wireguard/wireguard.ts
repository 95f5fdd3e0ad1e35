/**
 * wireguard backend (flannel pkg/backend/wireguard): pod traffic between hosts is encrypted.
 *
 * Design notes:
 * - Devices as flannel's: `flannel-wg` (ListenPort, 51820) and, in Mode "separate" with IPv6,
 *   `flannel-wg-v6` (ListenPortV6, 51821); in auto/ipv4/ipv6 one `flannel-wg` carries both
 *   families and the mode picks the peer's endpoint. Device MTU = (MTU or the interface's) − 80.
 * - Each host has one key pair; the private key persists in /run/flannel/wgkey (or
 *   WIREGUARD_KEY_FILE) so a restart keeps the public key peers know. BackendData (and
 *   BackendV6Data) is `{"PublicKey":"…","Port":N}`.
 * - One WireGuard peer per remote lease: AllowedIPs = its subnet(s), endpoint = its public IP
 *   and port, plus PSK and PersistentKeepaliveInterval. A single route sends the whole Network
 *   into the device (`<Network> dev flannel-wg scope link`); WireGuard's AllowedIPs pick the peer.
 * - Peers are entries of the shared RouteNetwork: validated (overlaps, own IP) before they reach
 *   the device, removed exactly, re-asserted by the 10 s check when someone removed or changed
 *   one (WireGuard has no change notifications), and replayed when the device is recreated
 *   after someone deleted it. flannel does none of the repairs.
 * - The device is Debian's wireguard-go (LinuxKernel, see kernel/linux/wireguard-go.ts), which
 *   runs on any kernel with TUN, and weftd says so at start: programming the kernel module (over
 *   the WireGuard generic-netlink family) is not built yet. On shutdown the devices are removed,
 *   as flannel removes them.
 */
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { Family, IpAddr, IpNet } from '../../ip/ip.ts'
import { netContainsIp, parseCidr } from '../../ip/ip.ts'
import type { KernelEntry } from '../../kernel/apply.ts'
import type { WireGuardPeer } from '../../kernel/kernel.ts'
import type { Lease, LeaseAttrs } from '../../lease/lease.ts'
import { ConfigError, WeftError } from '../../errors.ts'
import { familyName, publicIpOf, subnetOf } from '../lease-validation.ts'
import { RouteNetwork, type PeerPlan } from '../route-network.ts'
import { decodeWgData, encodeWgData } from './backend-data.ts'
import { keyFilePath, loadPrivateKey } from './private-key.ts'
import { createDevice, repairDevice, WIREGUARD_OVERHEAD, type WgDeviceConfig, type WgDeviceState } from './wireguard-device.ts'
import type { WireGuardMode, WireGuardOptions } from './wireguard-options.ts'

export const WIREGUARD_TYPE = 'wireguard'
export const DEVICE_V4 = 'flannel-wg'
export const DEVICE_V6 = 'flannel-wg-v6'

/** Factory registered as `wireguard`. */
export function wireguard(options: WireGuardOptions, deps: BackendDeps, keyFile: string = keyFilePath()): Backend {
  return { type: WIREGUARD_TYPE, registerNetwork: (config, signal) => registerWireGuard(options, deps, config, keyFile, signal) }
}

async function registerWireGuard(options: WireGuardOptions, deps: BackendDeps, config: NetworkConfig, keyFile: string, signal: AbortSignal): Promise<Network> {
  const { extIface, kernel, logger } = deps
  const families: Family[] = [...(config.enableIPv4 ? [4 as const] : []), ...(config.enableIPv6 ? [6 as const] : [])]
  for (const family of families) {
    if (!(family === 4 ? extIface.extAddr : extIface.extV6Addr)) throw new WeftError('BACKEND_UNSUPPORTED', `wireguard: no ${familyName(family)} public address on ${extIface.name}`)
  }
  const mtu = (options.mtu || extIface.mtu) - WIREGUARD_OVERHEAD
  if (mtu < (families.includes(6) ? 1280 : 68)) throw new ConfigError('Backend.MTU', `the underlay MTU ${options.mtu || extIface.mtu} leaves ${mtu} for pods, below the ${families.includes(6) ? 1280 : 68} minimum`)
  const key = loadPrivateKey(keyFile)
  logger.info(key.created ? 'generated a WireGuard private key' : 'loaded the WireGuard private key', { file: keyFile, publicKey: key.publicKey })

  const attrs: LeaseAttrs = {
    ...(families.includes(4) ? { publicIP: extIface.extAddr as IpAddr, backendData: encodeWgData({ publicKey: key.publicKey, port: options.listenPort }) } : {}),
    ...(families.includes(6) ? { publicIPv6: extIface.extV6Addr as IpAddr, backendV6Data: encodeWgData({ publicKey: key.publicKey, port: options.listenPortV6 }) } : {}),
    backendType: WIREGUARD_TYPE,
  }
  const lease = await deps.subnetManager.acquireLease(config, attrs, signal)
  const carried = (family: Family): WgDeviceConfig['families'][number] => {
    const subnet = subnetOf(lease, family)
    const network = family === 4 ? config.ipv4?.network : config.ipv6?.network
    if (!subnet || !network) throw new WeftError('LEASE_INVALID', `wireguard: ${familyName(family)} is enabled but the lease has no ${familyName(family)} subnet`)
    return { family, subnet, network }
  }
  const base = { mtu, privateKey: key.privateKey, publicKey: key.publicKey }
  const cfgs: WgDeviceConfig[] = options.mode === 'separate'
    ? families.map((f) => ({ ...base, name: f === 4 ? DEVICE_V4 : DEVICE_V6, listenPort: f === 4 ? options.listenPort : options.listenPortV6, families: [carried(f)] }))
    : [{ ...base, name: DEVICE_V4, listenPort: options.listenPort, families: families.map(carried) }]
  const devices: WgDeviceState[] = []
  try {
    for (const cfg of cfgs) devices.push(await createDevice(kernel, cfg, logger))
  } catch (err) {
    for (const d of devices) await kernel.deleteLink(d.link.index).catch(() => {})
    throw err
  }
  if (devices.some((d) => d.impl === 'userspace')) {
    logger.warn('using userspace WireGuard (wireguard-go), slower than the kernel module: weft does not program the kernel module yet', {})
  }
  return wireGuardNetwork(config, lease, deps, options, devices, families)
}

/** The Network for an acquired lease and configured devices (exported for tests). */
export function wireGuardNetwork(config: NetworkConfig, lease: Lease, deps: BackendDeps, options: WireGuardOptions, devices: WgDeviceState[], families: readonly Family[], checkIntervalMs?: number): Network & { readonly reconciler: RouteNetwork } {
  const { kernel, logger } = deps
  const deviceFor = (family: Family): WgDeviceState => (options.mode === 'separate' ? devices.find((d) => d.cfg.families.some((f) => f.family === family)) : devices[0]) as WgDeviceState
  const peerOf = (publicKey: string, endpoint: WireGuardPeer['endpoint'], allowedIPs: IpNet[]): WireGuardPeer => ({
    publicKey, allowedIPs,
    ...(endpoint ? { endpoint } : {}),
    ...(options.psk ? { presharedKey: options.psk } : {}),
    ...(options.persistentKeepaliveInterval > 0 ? { persistentKeepalive: options.persistentKeepaliveInterval } : {}),
  })

  const plan = async (peer: Lease): Promise<PeerPlan> => {
    const carried = families.filter((f) => subnetOf(peer, f))
    const data = new Map<Family, { publicKey: string; port: number }>()
    for (const family of carried) {
      const decoded = decodeWgData(family === 4 ? peer.attrs.backendData : peer.attrs.backendV6Data)
      if (!decoded.ok) return { ok: false, reason: `${family === 4 ? 'BackendData' : 'BackendV6Data'}: ${decoded.reason}` }
      const port = decoded.data.port || (family === 4 ? options.listenPort : options.listenPortV6)
      data.set(family, { publicKey: decoded.data.publicKey, port })
    }
    const endpointOf = (family: Family): WireGuardPeer['endpoint'] => {
      const ip = publicIpOf(peer, family)
      const d = data.get(family)
      return ip && d ? { ip, port: d.port } : undefined
    }
    if (options.mode === 'separate') {
      const entries: KernelEntry[] = carried.map((family) => ({
        kind: 'wgpeer', device: deviceFor(family).cfg.name,
        peer: peerOf((data.get(family) as { publicKey: string }).publicKey, endpointOf(family), [subnetOf(peer, family) as IpNet]),
      }))
      return { ok: true, entries }
    }
    // One peer for both families: flannel takes the key of the last family read (IPv6's).
    const keySource = data.get(6) ?? data.get(4)
    if (!keySource) return { ok: false, reason: 'lease carries no subnet of an enabled family' }
    const family = endpointFamily(options.mode, peer, deps.extIface)
    const entries: KernelEntry[] = [{
      kind: 'wgpeer', device: DEVICE_V4,
      peer: peerOf(keySource.publicKey, endpointOf(family) ?? endpointOf(family === 4 ? 6 : 4), carried.map((f) => subnetOf(peer, f) as IpNet)),
    }]
    return { ok: true, entries }
  }

  const ensureDevices = async (): Promise<boolean> => {
    let recreated = false
    for (const [i, dev] of devices.entries()) {
      const why = await repairDevice(kernel, dev, logger)
      if (why === undefined) continue
      logger.warn('wireguard device needs to be recreated', { device: dev.cfg.name, reason: why })
      devices[i] = await createDevice(kernel, dev.cfg, logger)
      recreated = true
    }
    return recreated
  }

  const listEntries = async (): Promise<KernelEntry[]> => {
    const out: KernelEntry[] = []
    for (const dev of devices) {
      const state = await kernel.getWireGuard(dev.cfg.name).catch(() => undefined)
      for (const peer of state?.peers ?? []) out.push({ kind: 'wgpeer', device: dev.cfg.name, peer })
    }
    return out
  }

  const reconciler = new RouteNetwork(
    { subnetManager: deps.subnetManager, kernel, logger, clock: deps.clock },
    {
      backendType: WIREGUARD_TYPE,
      families,
      networks: { ...(config.ipv4 ? { 4: config.ipv4.network } : {}), ...(config.ipv6 ? { 6: config.ipv6.network } : {}) },
      own: lease,
      ...(checkIntervalMs === undefined ? {} : { checkIntervalMs }),
    },
    { plan, ensureDevices, listEntries, deviceIndexes: () => devices.map((d) => d.link.index) },
  )
  return {
    lease,
    mtu: devices[0]?.cfg.mtu ?? 0,
    reconciler,
    run: async (signal) => {
      await reconciler.run(signal)
      // flannel removes its devices on shutdown; a userspace one's process ends with it.
      for (const dev of devices) {
        await kernel.deleteLink(dev.link.index).catch((err: unknown) => logger.warn('could not remove the wireguard device', { device: dev.cfg.name }, err))
      }
      logger.info('removed wireguard devices', { devices: devices.map((d) => d.cfg.name).join(',') })
    },
  }
}

/** flannel's selectMode for Mode auto (a public address beats a private one, IPv4 first); fixed otherwise. */
export function endpointFamily(mode: WireGuardMode, peer: Lease, ext: BackendDeps['extIface']): Family {
  if (mode === 'ipv4') return 4
  if (mode === 'ipv6') return 6
  const v4 = peer.attrs.publicIP
  const v6 = peer.attrs.publicIPv6
  if (!v6) return 4
  if (v4 && !isPrivate(v4) && ext.extAddr) return 4
  if (!isPrivate(v6) && ext.extV6Addr && !isPrivate(ext.extV6Addr)) return 6
  return 4
}

const PRIVATE = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'].map((t) => parseCidr(t) as IpNet)

/** Go's net.IP.IsPrivate (RFC 1918, RFC 4193). */
export function isPrivate(ip: IpAddr): boolean {
  return PRIVATE.some((n) => n.family === ip.family && netContainsIp(n, ip))
}

