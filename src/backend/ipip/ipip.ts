/**
 * ipip backend (flannel pkg/backend/ipip): IPv4 in IPv4 (protocol 4), 20 bytes of overhead.
 *
 * Design notes:
 * - One device `flannel.ipip`, kind ipip, local = the interface address, remote any; not the
 *   module's `tunl0`, which users may own (flannel's reasoning). An existing flannel.ipip with
 *   another local or a remote is recreated; a link of that name of another kind is an error
 *   (flannel will not delete a user's device either).
 * - MTU = interface MTU − 20; address `<subnet address>/32`, so no broadcast routes appear.
 * - Per peer `ip route replace <subnet> via <public IP> dev flannel.ipip onlink`; with
 *   DirectRouting a peer on the same L2 segment gets `via <public IP> dev <ext iface>` instead.
 * - IPv4 only: a network with EnableIPv6 is refused at start (flannel silently ignores IPv6).
 * - A kernel without ipip (CONFIG_NET_IPIP unset) answers EOPNOTSUPP: weft says so.
 * - The shared RouteNetwork reconciles (validation, 10 s check, re-assert on notifications, the
 *   device recreated and every peer replayed after someone deleted it).
 */
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { IpAddr, IpNet } from '../../ip/ip.ts'
import { ipEqual, netContainsIp, netIp } from '../../ip/ip.ts'
import type { Kernel, Link } from '../../kernel/kernel.ts'
import { isKernelErrno } from '../../kernel/kernel-error.ts'
import type { Lease } from '../../lease/lease.ts'
import type { Logger } from '../../log/logger.ts'
import { ConfigError, WeftError } from '../../errors.ts'
import { RouteNetwork, type PeerPlan } from '../route-network.ts'
import { isDirectlyReachable } from '../vxlan/desired.ts'
import type { IpipOptions } from './ipip-options.ts'

export const IPIP_TYPE = 'ipip'
export const IPIP_DEVICE = 'flannel.ipip'
export const IPIP_OVERHEAD = 20

/** Factory registered as `ipip`. */
export function ipip(options: IpipOptions, deps: BackendDeps): Backend {
  return { type: IPIP_TYPE, registerNetwork: (config, signal) => registerIpip(options, deps, config, signal) }
}

async function registerIpip(options: IpipOptions, deps: BackendDeps, config: NetworkConfig, signal: AbortSignal): Promise<Network> {
  const { extIface, kernel, logger } = deps
  if (!config.enableIPv4 || !config.ipv4) throw new ConfigError('EnableIPv4', 'the ipip backend carries IPv4 only and needs EnableIPv4')
  if (config.enableIPv6) throw new ConfigError('EnableIPv6', 'the ipip backend carries IPv4 only; use vxlan or wireguard for IPv6')
  const local = extIface.ifaceAddr
  if (!local || !extIface.extAddr) throw new WeftError('BACKEND_UNSUPPORTED', `ipip: no IPv4 address on ${extIface.name}`)
  const mtu = extIface.mtu - IPIP_OVERHEAD
  if (mtu < 68) throw new WeftError('BACKEND_UNSUPPORTED', `ipip: MTU ${extIface.mtu} of ${extIface.name} is too small for ipip mode to work`)
  const lease = await deps.subnetManager.acquireLease(config, { publicIP: extIface.extAddr, backendType: IPIP_TYPE }, signal)
  const subnet = lease.subnet as IpNet
  const network = config.ipv4.network
  let link = await ensureIpipDevice(kernel, { local, mtu, subnet, network }, logger)
  logger.info('ipip device ready', { device: IPIP_DEVICE, mtu, directRouting: options.directRouting })

  const plan = async (peer: Lease): Promise<PeerPlan> => {
    const gateway = peer.attrs.publicIP as IpAddr
    const direct = options.directRouting && isDirectlyReachable(await kernel.routeGet(gateway).catch(() => undefined))
    const route = direct
      ? { dst: peer.subnet as IpNet, gateway, index: extIface.index }
      : { dst: peer.subnet as IpNet, gateway, index: link.index, onlink: true }
    return { ok: true, entries: [{ kind: 'route', route }] }
  }
  const ensureDevices = async (): Promise<boolean> => {
    const now = await kernel.getLink(IPIP_DEVICE)
    if (now && now.index === link.index && now.kind === 'ipip') {
      if (!now.up) await kernel.setLink(now.index, { up: true })
      return false
    }
    logger.warn('ipip device was deleted or replaced; recreating it', { device: IPIP_DEVICE })
    link = await ensureIpipDevice(kernel, { local, mtu, subnet, network }, logger)
    return true
  }
  const reconciler = new RouteNetwork(
    { subnetManager: deps.subnetManager, kernel, logger, clock: deps.clock },
    { backendType: IPIP_TYPE, families: [4], networks: { 4: network }, own: lease },
    { plan, ensureDevices, deviceIndexes: () => [link.index] },
  )
  return { lease, mtu, run: (s) => reconciler.run(s) }
}

interface IpipDeviceConfig {
  readonly local: IpAddr
  readonly mtu: number
  readonly subnet: IpNet
  readonly network: IpNet
}

/** Creates (or reuses a compatible) flannel.ipip, with MTU, /32 address and up. */
export async function ensureIpipDevice(kernel: Kernel, cfg: IpipDeviceConfig, log: Logger): Promise<Link> {
  let link = await kernel.getLink(IPIP_DEVICE)
  if (link && link.kind !== 'ipip') {
    throw new WeftError('BACKEND_UNSUPPORTED', `${IPIP_DEVICE} isn't an ipip mode device, please remove device and try again`)
  }
  if (link && (!ipEqual(link.ipip?.local, cfg.local) || link.ipip?.remote !== undefined)) {
    log.warn('device already exists with incompatible attributes; recreating it', { device: IPIP_DEVICE })
    await kernel.deleteLink(link.index).catch((err: unknown) => { if (!isKernelErrno(err, 'ENODEV')) throw err })
    link = undefined
  }
  if (!link) {
    try {
      link = await kernel.createIpip({ name: IPIP_DEVICE, local: cfg.local, mtu: cfg.mtu })
    } catch (err) {
      if (isKernelErrno(err, 'EOPNOTSUPP')) {
        throw new WeftError('BACKEND_UNSUPPORTED', 'ipip: this kernel has no ipip support (CONFIG_NET_IPIP; try `modprobe ipip`); use vxlan or wireguard', { cause: err })
      }
      throw err
    }
  }
  if (link.mtu !== cfg.mtu) await kernel.setLink(link.index, { mtu: cfg.mtu })
  const own = netIp(cfg.subnet)
  for (const addr of await kernel.listAddrs(4, link.index)) {
    if (!ipEqual(addr.ip, own) && netContainsIp(cfg.network, addr.ip)) await kernel.deleteAddr(addr)
  }
  await kernel.replaceAddr({ index: link.index, ip: own, prefix: 32 })
  await kernel.setLink(link.index, { up: true })
  return { ...link, mtu: cfg.mtu, up: true }
}
