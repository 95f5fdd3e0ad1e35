/**
 * flannel0, the udp backend's TUN device: opened and configured as flannel does (address
 * <subnet network>/32, MTU underlay − 28, up, route for the whole Network), and recreated if
 * someone deletes it while the daemon runs (flannel's udp backend never recovers from that).
 */
import type { IpAddr, IpNet } from '../../ip/ip.ts'
import type { Kernel, TunDevice } from '../../kernel/kernel.ts'
import type { Logger } from '../../log/logger.ts'
import { WeftError } from '../../errors.ts'

export const TUN_NAME = 'flannel0'

export interface Flannel0Spec {
  readonly address: IpAddr
  readonly network: IpNet
  readonly mtu: number
  /** Refuse a kernel whose TUN has no real fd (MemoryKernel) before anything uses it. */
  readonly requireRealFd: boolean
  /** Called after each (re)open, e.g. to set the queue length through a socket. */
  readonly afterOpen?: () => void
}

export class Flannel0 {
  private device: TunDevice | undefined

  constructor(private readonly kernel: Kernel, private readonly spec: Flannel0Spec, private readonly log: Logger) {}

  /** The queue fd of the open device (-1 before open). */
  get fd(): number {
    return this.device?.fds[0] ?? -1
  }

  /** Opens and configures the device; closes it again on failure. */
  async open(): Promise<void> {
    const { kernel, spec } = this
    const tun = await kernel.openTun({ name: TUN_NAME })
    try {
      if (spec.requireRealFd && !((tun.fds[0] ?? -1) >= 0)) {
        throw new WeftError('BACKEND_UNSUPPORTED', `udp backend needs a real TUN device; ${TUN_NAME} has no file descriptor on this kernel`)
      }
      // IPv4-only device: no link-local address, so no router solicitations to drop (before up).
      await kernel.setSysctl(`net/ipv6/conf/${TUN_NAME}/disable_ipv6`, '1').catch(() => {})
      await kernel.replaceAddr({ index: tun.index, ip: spec.address, prefix: 32 })
      await kernel.setLink(tun.index, { mtu: spec.mtu, up: true })
      // Our ICMP net-unreachable replies come from flannel0's own address; without accept_local
      // the kernel drops them as martians (flannel's never arrive).
      await kernel.setSysctl(`net/ipv4/conf/${TUN_NAME}/accept_local`, '1').catch((err: unknown) => this.log.warn('accept_local not set; ICMP net unreachable will not reach senders', { device: TUN_NAME }, err))
      await kernel.replaceRoute({ dst: spec.network, index: tun.index, scope: 'universe' })
    } catch (err) {
      tun.close()
      throw err
    }
    this.device = tun
    spec.afterOpen?.()
  }

  /** Reopens the device when it is gone or was replaced; true when it did. */
  async ensure(): Promise<boolean> {
    const link = await this.kernel.getLink(TUN_NAME)
    if (link && link.index === this.device?.index) return false
    this.log.warn('flannel0 is gone; recreating it', { device: TUN_NAME })
    this.close()
    await this.open()
    return true
  }

  close(): void {
    this.device?.close()
    this.device = undefined
  }
}
