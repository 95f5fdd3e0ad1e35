/**
 * The VXLAN device of one family: `flannel.<VNI>` / `flannel-v6.<VNI>` (flannel
 * pkg/backend/vxlan/device.go). Ensures a compatible device exists, gives it the lease address,
 * brings it up and checks its MAC stuck (systemd's MACAddressPolicy may rewrite it, #1795).
 */
import type { Family, IpAddr, IpNet } from '../../ip/ip.ts'
import type { Kernel, Link } from '../../kernel/kernel.ts'
import type { Logger } from '../../log/logger.ts'
import { WeftError } from '../../errors.ts'
import { formatIp, ipEqual, netContainsIp, netIp } from '../../ip/ip.ts'
import { isKernelErrno } from '../../kernel/kernel-error.ts'

/** Everything the device of one family is created from (and compared against). */
export interface VxlanDeviceConfig {
  readonly family: Family
  readonly name: string
  readonly vni: number
  /** 0 = kernel default (8472). */
  readonly port: number
  readonly gbp: boolean
  readonly learning: boolean
  /** Public IP of this host in the family (encapsulation source). */
  readonly local: IpAddr
  /** External interface index. */
  readonly parentIndex: number
  /** Device MTU (underlay − overhead). */
  readonly mtu: number
}

/** VXLAN header overhead: outer IPv4 (20) or IPv6 (40) + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const vxlanOverhead = (family: Family): number => (family === 6 ? 70 : 50)

/** flannel's device names: `flannel.<VNI>`, `flannel-v6.<VNI>`. */
export const deviceName = (family: Family, vni: number): string => (family === 6 ? `flannel-v6.${vni}` : `flannel.${vni}`)

/** Why an existing link cannot serve as the device; undefined when it can (flannel's isIncompatible, plus learning). */
export function incompatibility(link: Link, cfg: VxlanDeviceConfig): string | undefined {
  const v = link.vxlan
  if (link.kind !== 'vxlan' || !v) return `kind is ${link.kind ?? 'none'}, not vxlan`
  if (v.vni !== cfg.vni) return `VNI is ${v.vni}, not ${cfg.vni}`
  if (v.parentIndex && cfg.parentIndex && v.parentIndex !== cfg.parentIndex) return `dev index is ${v.parentIndex}, not ${cfg.parentIndex}`
  if (v.local && !ipEqual(v.local, cfg.local)) return `local is ${formatIp(v.local)}, not ${formatIp(cfg.local)}`
  if (v.port > 0 && cfg.port > 0 && v.port !== cfg.port) return `port is ${v.port}, not ${cfg.port}`
  if (v.gbp !== cfg.gbp) return `gbp is ${v.gbp}, not ${cfg.gbp}`
  if (v.learning !== cfg.learning) return `learning is ${v.learning}, not ${cfg.learning}`
  return undefined
}

/** The device to use, and whether it was created now. */
export interface EnsuredDevice {
  readonly link: Link
  /** The device's MAC: the existing device's when reused, else the one requested. */
  readonly mac: string
  readonly created: boolean
}

/**
 * Reuses a compatible device (keeping its MAC, so peers' FDB entries stay valid across restarts)
 * or creates one with the MAC `mac()` resolves to (asked only then); an incompatible device is
 * deleted first.
 */
export async function ensureDevice(kernel: Kernel, cfg: VxlanDeviceConfig, mac: () => Promise<string>, log: Logger): Promise<EnsuredDevice> {
  const existing = await kernel.getLink(cfg.name)
  if (existing) {
    const why = incompatibility(existing, cfg)
    if (why === undefined && existing.mac) {
      if (existing.mtu !== cfg.mtu) await kernel.setLink(existing.index, { mtu: cfg.mtu })
      return { link: { ...existing, mtu: cfg.mtu }, mac: existing.mac, created: false }
    }
    log.warn('device already exists with incompatible configuration; recreating it', { device: cfg.name, reason: why ?? 'no MAC address' })
    await kernel.deleteLink(existing.index).catch((err: unknown) => {
      if (!isKernelErrno(err, 'ENODEV')) throw err
    })
  }
  const wanted = await mac()
  const link = await kernel.createVxlan({
    name: cfg.name, vni: cfg.vni, port: cfg.port, local: cfg.local, parentIndex: cfg.parentIndex,
    learning: cfg.learning, gbp: cfg.gbp, mtu: cfg.mtu, mac: wanted,
  })
  log.info('created vxlan device', { device: cfg.name, vni: cfg.vni, mac: wanted, mtu: cfg.mtu })
  return { link, mac: wanted, created: true }
}

/**
 * Gives the device its lease address (`<subnet address>/32`, v6 `/128`), removes stray
 * addresses (IPv4 ones inside the Network, IPv6 non-link-local ones), disables router
 * advertisements, brings it up and checks the MAC.
 */
export async function configureDevice(kernel: Kernel, link: Link, subnet: IpNet, network: IpNet | undefined, mac: string, log: Logger): Promise<void> {
  const family = subnet.family
  // IPv6 may be disabled on the host: then there is no such sysctl, and nothing to disable.
  await kernel.setSysctl(`net/ipv6/conf/${link.name}/accept_ra`, '0').catch((err: unknown) => log.debug('accept_ra not set', { device: link.name }, err))
  const own = netIp(subnet)
  for (const addr of await kernel.listAddrs(family, link.index)) {
    if (ipEqual(addr.ip, own)) continue
    const stray = family === 4 ? network === undefined || netContainsIp(network, addr.ip) : addr.scope !== 'link'
    if (!stray) continue
    log.info('removing stray address from device', { device: link.name, address: `${formatIp(addr.ip)}/${addr.prefix}` })
    await kernel.deleteAddr(addr)
  }
  await kernel.replaceAddr({ index: link.index, ip: own, prefix: family === 4 ? 32 : 128 })
  await kernel.setLink(link.index, { up: true })
  let after = await kernel.getLinkByIndex(link.index)
  if (after && after.mac !== mac) {
    // udev/systemd (MACAddressPolicy=persistent) may rewrite the MAC of a new link (#1795):
    // peers know ours from the lease, so put it back once before giving up.
    log.warn('device MAC was changed by someone; restoring it', { device: link.name, wanted: mac, got: after.mac })
    await kernel.setLink(link.index, { mac })
    after = await kernel.getLinkByIndex(link.index)
  }
  if (after?.mac !== mac) {
    throw new WeftError('KERNEL_OP_FAILED', `${link.name}'s mac address wanted: ${mac}, but got: ${after?.mac ?? 'none'}`, {
      details: { device: link.name, wanted: mac, got: after?.mac },
    })
  }
}
