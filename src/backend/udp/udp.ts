/**
 * udp backend (flannel pkg/backend/udp): raw IPv4 packets carried in UDP through the TUN
 * device flannel0.
 *
 * Design notes:
 * - Wire format is flannel's, byte for byte: the UDP payload is the IPv4 packet, no header;
 *   datagrams go to peer PublicIP:<our configured Port> from a socket bound to the interface
 *   address and Port. TTL is decremented on each proxy hop (checksum patched per RFC 1624),
 *   and packets whose TTL would reach 0 are dropped, as flannel's C proxy does.
 * - flannel0: TUN (no packet info), address <subnet network>/32, MTU = underlay − 28 (IPv4 +
 *   UDP headers), route for the whole Network via the device. The lease carries PublicIP only
 *   (no BackendType, no BackendData), and remote leases are not filtered by type.
 * - Speed: flannel forwards one packet per syscall pair in a cgo loop; weft runs the loop in a
 *   worker thread with batched recvmmsg/sendmmsg (data-path-worker.ts), so the control plane
 *   on the main thread never competes with it on the event loop. Runs of same-size packets to
 *   one peer go out as one UDP GSO send and come in through UDP GRO: the kernel still puts one
 *   datagram per IPv4 packet on the wire, so flannel peers see exactly what they expect.
 * - Robustness (beyond flannel): datagrams from addresses that are not a peer's PublicIP, or
 *   addressed outside this host's subnet, and malformed packets are dropped and counted; the
 *   counters are logged periodically and at shutdown. A peer whose datagrams leave from an
 *   address other than its PublicIP (its --public-ip is another local address, not NAT) is
 *   therefore not heard; flannel would accept it.
 * - Deliberate differences, each visible to operators: ICMP net unreachable is also sent for
 *   ICMP echo (flannel skips all ICMP; weft skips only ICMP errors), and it actually arrives
 *   (accept_local on flannel0; flannel's are dropped as martians). flannel0's txqueuelen is
 *   4096, not 500: the TUN ring overflowing was the cause of every TCP retransmission in the
 *   benchmark. IPv6 is off on flannel0. A deleted flannel0 is recreated.
 */
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { UdpOptions } from './udp-options.ts'
import { errorMessage, WeftError } from '../../errors.ts'
import { ipToBytes, netIp } from '../../ip/ip.ts'
import { openUdpSocket, closeFd, setTxQueueLen } from '../../kernel/linux/udp-io.ts'
import type { DataPathHandle, DataPathOptions } from './data-path.ts'
import { ipv4Number } from './peer-table.ts'
import { UdpNetwork } from './udp-network.ts'
import { Flannel0, TUN_NAME } from './flannel0.ts'

export { TUN_NAME }

export const UDP_TYPE = 'udp'
/** IPv4 header + UDP header. */
export const UDP_OVERHEAD = 28
/** flannel0's txqueuelen (see registerNetwork). */
export const TUN_QUEUE_LEN = 4096

/** The fd-level effects of the backend, replaceable in unit tests (MemoryKernel has no real TUN). */
export interface UdpIo {
  /** Opens the UDP socket bound to `addr` (4 bytes) : `port`; returns the fd. */
  openSocket(addr: Uint8Array, port: number): number
  setTxQueueLen(fd: number, device: string, len: number): void
  closeFd(fd: number): void
  /** Refuse a kernel whose TUN has no real fd (MemoryKernel) before touching real sockets. */
  requireRealTun?: boolean
  /** Starts the forwarding loop; default: the worker thread. */
  startDataPath?: (options: DataPathOptions) => DataPathHandle
}

const linuxIo: UdpIo = { openSocket: openUdpSocket, setTxQueueLen, closeFd, requireRealTun: true }

/** Factory registered as `udp`. */
export function udp(options: UdpOptions, deps: BackendDeps): Backend {
  return udpBackend(options, deps, linuxIo)
}

/** The backend with its fd-level effects injected. */
export function udpBackend(options: UdpOptions, deps: BackendDeps, io: UdpIo): Backend {
  return {
    type: UDP_TYPE,
    async registerNetwork(config: NetworkConfig, signal: AbortSignal): Promise<Network> {
      // The msghdr layouts the worker writes are those of 64-bit little-endian Linux.
      if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) {
        throw new WeftError('BACKEND_UNSUPPORTED', 'UDP backend is not supported on this architecture', { details: { arch: process.arch } })
      }
      if (!config.enableIPv4 || !config.ipv4 || config.enableIPv6) {
        throw new WeftError('BACKEND_UNSUPPORTED', 'udp backend supports IPv4 only: set EnableIPv4 and not EnableIPv6')
      }
      const { extIface, kernel, logger } = deps
      const ifaceAddr = extIface.ifaceAddr
      const extAddr = extIface.extAddr
      if (!ifaceAddr || !extAddr) throw new WeftError('BACKEND_UNSUPPORTED', `udp: no IPv4 address on ${extIface.name}`)
      const lease = await deps.subnetManager.acquireLease(config, { publicIP: extAddr, backendType: '' }, signal)
      const subnet = lease.subnet
      if (!subnet) throw new WeftError('LEASE_INVALID', 'udp: acquired lease has no IPv4 subnet')
      const mtu = extIface.mtu - UDP_OVERHEAD
      const tunIp = netIp(subnet)
      let udpFd = -1
      const tun = new Flannel0(kernel, {
        address: tunIp,
        network: config.ipv4.network,
        mtu,
        requireRealFd: io.requireRealTun ?? false,
        // The TUN ring (txqueuelen, default 500) is where bursts from a fast TCP sender wait for
        // the proxy; when it overflows, TCP backs off. A deeper ring keeps a burst in flight.
        afterOpen: () => setQueueLen(),
      }, logger)
      const setQueueLen = (): void => {
        if (udpFd < 0) return
        try {
          io.setTxQueueLen(udpFd, TUN_NAME, TUN_QUEUE_LEN)
        } catch (err) {
          logger.warn('could not raise the TUN queue length', { device: TUN_NAME, queueLen: TUN_QUEUE_LEN }, err)
        }
      }
      try {
        await tun.open()
      } catch (err) {
        throw err instanceof WeftError ? err : new WeftError('KERNEL_OP_FAILED', `udp: failed to set up ${TUN_NAME}`, { cause: err })
      }
      try {
        udpFd = io.openSocket(ipToBytes(ifaceAddr), options.port)
      } catch (err) {
        tun.close()
        const where = `${ipv4String(ifaceAddr)}:${options.port}`
        throw new WeftError('KERNEL_OP_FAILED', `udp: failed to bind the UDP socket to ${where}: ${errorMessage(err)}`, { cause: err, details: { port: options.port } })
      }
      setQueueLen()
      const fd = udpFd
      logger.info('udp backend ready', { device: TUN_NAME, address: `${ipv4String(tunIp)}/32`, mtu, port: options.port })
      return new UdpNetwork(
        { subnetManager: deps.subnetManager, logger, clock: deps.clock, ...(deps.metrics ? { metrics: deps.metrics } : {}) },
        {
          lease,
          network: config.ipv4.network,
          port: options.port,
          mtu,
          tun,
          dataPath: { udpFd: fd, tunAddr: ipv4Number(tunIp), localNet: ipv4Number(tunIp), localPrefix: subnet.prefix },
          release: () => { io.closeFd(fd); tun.close() },
          ...(io.startDataPath ? { startDataPath: io.startDataPath } : {}),
        },
      )
    },
  }
}

function ipv4String(ip: { value: bigint }): string {
  const n = Number(ip.value)
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}
