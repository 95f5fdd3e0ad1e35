/**
 * One flannel WireGuard device (`flannel-wg`, `flannel-wg-v6`): created (replacing any link of
 * that name, as flannel does), given our key and port with no peers, the lease address per
 * family it carries, set up, and the route for the Network through it (`ip route replace
 * 10.5.0.0/16 dev flannel-wg scope link`).
 */
import type { Family, IpNet } from '../../ip/ip.ts'
import { formatIp, ipEqual, netContainsIp, netEqual, netIp } from '../../ip/ip.ts'
import type { Kernel, Link, Route, WireGuardImpl } from '../../kernel/kernel.ts'
import { isKernelErrno } from '../../kernel/kernel-error.ts'
import type { Logger } from '../../log/logger.ts'

/** flannel's overhead: 20/40-byte IP header + 8 UDP + 32 WireGuard header and tag (+20 slack). */
export const WIREGUARD_OVERHEAD = 80

export interface WgDeviceConfig {
  readonly name: string
  readonly listenPort: number
  readonly mtu: number
  readonly privateKey: string
  readonly publicKey: string
  /** Per family this device carries: our lease subnet and the flannel Network. */
  readonly families: ReadonlyArray<{ readonly family: Family; readonly subnet: IpNet; readonly network: IpNet }>
}

export interface WgDeviceState {
  readonly cfg: WgDeviceConfig
  link: Link
  impl: WireGuardImpl
}

const networkRoute = (index: number, network: IpNet): Route => ({ dst: network, index, scope: 'link' })

/** Creates and configures the device from scratch. */
export async function createDevice(kernel: Kernel, cfg: WgDeviceConfig, log: Logger): Promise<WgDeviceState> {
  const existing = await kernel.getLink(cfg.name)
  if (existing) {
    log.warn('device already exists; recreating it', { device: cfg.name })
    await kernel.deleteLink(existing.index).catch((err: unknown) => { if (!isKernelErrno(err, 'ENODEV')) throw err })
  }
  const { link, impl } = await kernel.createWireGuard({ name: cfg.name, mtu: cfg.mtu })
  try {
    await kernel.configureWireGuard(cfg.name, { privateKey: cfg.privateKey, listenPort: cfg.listenPort, replacePeers: true })
    for (const { family, subnet, network } of cfg.families) {
      const own = netIp(subnet)
      for (const addr of await kernel.listAddrs(family, link.index)) {
        const stray = !ipEqual(addr.ip, own) && (family === 4 ? netContainsIp(network, addr.ip) : addr.scope !== 'link')
        if (stray) await kernel.deleteAddr(addr)
      }
      await kernel.replaceAddr({ index: link.index, ip: own, prefix: family === 4 ? 32 : 128 })
    }
    await kernel.setLink(link.index, { up: true })
    for (const { network } of cfg.families) await kernel.replaceRoute(networkRoute(link.index, network))
  } catch (err) {
    await kernel.deleteLink(link.index).catch(() => {})
    throw err
  }
  log.info('created wireguard device', {
    device: cfg.name, implementation: impl === 'kernel' ? 'kernel module' : 'wireguard-go (userspace)', listenPort: cfg.listenPort, mtu: cfg.mtu,
    publicKey: cfg.publicKey, addresses: cfg.families.map((f) => formatIp(netIp(f.subnet))).join(','),
  })
  return { cfg, link, impl }
}

/**
 * Why the device needs to be recreated (gone, not WireGuard any more, lost its key or port),
 * or undefined; a down device is set up and a missing Network route put back in place.
 */
export async function repairDevice(kernel: Kernel, dev: WgDeviceState, log: Logger): Promise<string | undefined> {
  const link = await kernel.getLink(dev.cfg.name)
  if (!link) return 'deleted'
  const wg = await kernel.getWireGuard(dev.cfg.name).catch(() => undefined)
  if (!wg) return 'not a WireGuard device any more'
  if (wg.publicKey !== dev.cfg.publicKey || wg.listenPort !== dev.cfg.listenPort) return 'its key or listen port was changed'
  dev.link = link
  if (!link.up) {
    log.warn('device was set down; setting it up', { device: dev.cfg.name })
    await kernel.setLink(link.index, { up: true })
  }
  for (const { family, network } of dev.cfg.families) {
    const routes = await kernel.listRoutes({ family, dst: network })
    if (!routes.some((r) => netEqual(r.dst, network) && r.index === link.index)) {
      log.warn('route for the network was removed; restoring it', { device: dev.cfg.name })
      await kernel.replaceRoute(networkRoute(link.index, network))
    }
  }
  return undefined
}
