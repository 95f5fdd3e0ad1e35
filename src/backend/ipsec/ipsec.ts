/**
 * ipsec backend (flannel pkg/backend/ipsec): IKEv2 with a pre-shared key and ESP in tunnel
 * mode between every pair of hosts, negotiated by strongSwan's charon (spawned and owned by
 * weftd, driven over VICI: kernel/linux/charon.ts).
 *
 * Design notes:
 * - Lease attrs as flannel's: PublicIP, BackendType "ipsec", no BackendData.
 * - One connection per remote lease, named as flannel names it
 *   (`<our IP>-<our subnet>-<their subnet>-<their IP>`), child SA `<our subnet>-<their subnet>`,
 *   flannel's IKE proposal (aes256-sha256-modp4096), ESPProposal for ESP, UDPEncap → encap.
 * - Unlike flannel, charon installs the xfrm policies (out, in, fwd) per child SA itself, where
 *   flannel has charon skip them and installs them over netlink; the result in the kernel is
 *   the same three policies per peer, and no policy exists for a peer whose SA is not up.
 * - Like flannel, no routes are added: packets to a remote subnet follow the host's routes
 *   (normally the default route) and the out policy diverts them into the tunnel.
 * - MTU: interface MTU − 77 (− 8 more with UDPEncap), flannel's figures.
 */
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { IpAddr, IpNet } from '../../ip/ip.ts'
import { formatCidr, formatIp } from '../../ip/ip.ts'
import type { IkeDaemon } from '../../kernel/ike.ts'
import type { Lease } from '../../lease/lease.ts'
import type { Logger } from '../../log/logger.ts'
import { ConfigError, WeftError, errorMessage } from '../../errors.ts'
import { consumeLeaseWatch } from '../consume-lease-watch.ts'
import { checkLease, describeLease, sameLease, SubnetIndex, type LeaseCheckContext } from '../lease-validation.ts'
import { SerialLeaseQueue } from '../serial-lease-queue.ts'
import type { IpsecOptions } from './ipsec-options.ts'

export const IPSEC_TYPE = 'ipsec'
export const IPSEC_OVERHEAD = 77
export const UDP_ENCAP_OVERHEAD = 8

export type StartIke = (log: Logger) => Promise<IkeDaemon>
const startCharon: StartIke = async (log) => (await import('../../kernel/linux/charon.ts')).startCharon(log)

/** Factory registered as `ipsec`; `startIke` is injectable for tests. */
export function ipsec(options: IpsecOptions, deps: BackendDeps, startIke: StartIke = startCharon): Backend {
  return { type: IPSEC_TYPE, registerNetwork: (config, signal) => registerIpsec(options, deps, config, startIke, signal) }
}

async function registerIpsec(options: IpsecOptions, deps: BackendDeps, config: NetworkConfig, startIke: StartIke, signal: AbortSignal): Promise<Network> {
  const { extIface, logger } = deps
  if (!config.enableIPv4 || !config.ipv4) throw new ConfigError('EnableIPv4', 'the ipsec backend carries IPv4 only and needs EnableIPv4')
  if (config.enableIPv6) throw new ConfigError('EnableIPv6', 'the ipsec backend carries IPv4 only; use wireguard for IPv6')
  if (!extIface.extAddr) throw new WeftError('BACKEND_UNSUPPORTED', `ipsec: no IPv4 address on ${extIface.name}`)
  logger.info('ipsec config', { udpEncap: options.udpEncap, espProposal: options.espProposal })
  const lease = await deps.subnetManager.acquireLease(config, { publicIP: extIface.extAddr, backendType: IPSEC_TYPE }, signal)
  let ike: IkeDaemon
  try {
    ike = await startIke(logger)
  } catch (err) {
    throw new WeftError('BACKEND_UNSUPPORTED', `ipsec: could not start the IKE daemon: ${errorMessage(err)}`, { cause: err })
  }
  const mtu = extIface.mtu - IPSEC_OVERHEAD - (options.udpEncap ? UDP_ENCAP_OVERHEAD : 0)
  const ctx: LeaseCheckContext = { backendType: IPSEC_TYPE, families: [4], networks: { 4: config.ipv4.network }, own: lease }
  const peers = new IpsecPeers(options, ctx, ike, logger)
  return {
    lease,
    mtu,
    run: async (runSignal) => {
      peers.signal = runSignal
      try {
        await consumeLeaseWatch({ subnetManager: deps.subnetManager, clock: deps.clock, log: logger }, lease, (r) => peers.submit(r), runSignal)
        await peers.idle()
      } finally {
        await ike.stop()
        logger.info('stopped the IKE daemon', { daemon: ike.description })
      }
    },
  }
}

/** flannel's connection name. */
export function connectionName(own: Lease, peer: Lease): string {
  const ip = (l: Lease): string => (l.attrs.publicIP ? formatIp(l.attrs.publicIP) : '')
  return `${ip(own)}-${formatCidr(own.subnet as IpNet)}-${formatCidr(peer.subnet as IpNet)}-${ip(peer)}`
}

/** The remote leases with a loaded connection, changed in event order through one queue. */
class IpsecPeers extends SerialLeaseQueue {
  private readonly accepted = new SubnetIndex()

  constructor(
    private readonly options: IpsecOptions,
    private readonly ctx: LeaseCheckContext,
    private readonly ike: IkeDaemon,
    log: Logger,
  ) {
    super(log, [4], 'ipsec')
  }

  protected async added(lease: Lease): Promise<void> {
    const key = this.keyOf(lease)
    const known = key === undefined ? undefined : this.peers.get(key)
    if (known && sameLease(known, lease)) return
    if (known) await this.removed(known)
    const verdict = checkLease(this.ctx, lease, this.accepted)
    if (!verdict.ok) {
      this.log.warn(verdict.ignored ? `ignoring non-${IPSEC_TYPE} subnet` : 'refusing lease', { lease: describeLease(lease), reason: verdict.reason })
      return
    }
    this.peers.set(key as string, lease)
    this.accepted.add(lease.subnet as IpNet, key as string)
    const name = connectionName(this.ctx.own, lease)
    try {
      await this.ike.loadConnection({
        name, localAddr: this.ctx.own.attrs.publicIP as IpAddr, remoteAddr: lease.attrs.publicIP as IpAddr,
        localTs: this.ctx.own.subnet as IpNet, remoteTs: lease.subnet as IpNet,
        espProposal: this.options.espProposal, udpEncap: this.options.udpEncap, psk: this.options.psk,
      })
      this.log.info('subnet added', { lease: describeLease(lease), connection: name })
    } catch (err) {
      this.log.error('failed to load the IPsec connection', { lease: describeLease(lease), connection: name }, err)
    }
  }

  protected async removed(lease: Lease): Promise<void> {
    const key = this.keyOf(lease)
    const known = key === undefined ? undefined : this.peers.get(key)
    if (!known) return
    this.peers.delete(key as string)
    this.accepted.delete(known.subnet as IpNet, key as string)
    const name = connectionName(this.ctx.own, known)
    try {
      await this.ike.unloadConnection(name)
      this.log.info('subnet removed', { lease: describeLease(known), connection: name })
    } catch (err) {
      this.log.error('failed to unload the IPsec connection', { connection: name }, err)
    }
  }
}
