/**
 * The udp Network: owns flannel0's fd, the UDP socket and the forwarding worker. The main
 * thread only consumes the lease watch and hands the worker whole peer-table snapshots, so a
 * traffic burst never delays lease renewal or the watch.
 */
import type { Network } from '../backend.ts'
import type { IpNet } from '../../ip/ip.ts'
import type { Lease, LeaseWatchResult } from '../../lease/lease.ts'
import { consumeLeaseWatch } from '../consume-lease-watch.ts'
import type { Logger } from '../../log/logger.ts'
import type { SubnetManager } from '../../subnet/subnet-manager.ts'
import type { Clock } from '../../util/clock.ts'
import type { BackendRecorder } from '../../metrics/recorder.ts'
import { backoffDelay, raceAbort } from '../../util/abort.ts'
import { PeerTable, describePeer } from './peer-table.ts'
import { addCounters, counterFields, totalDrops, UdpDataPath, zeroCounters, type DataPathHandle, type DataPathOptions, type UdpCounters } from './data-path.ts'

export interface UdpNetworkDeps {
  readonly subnetManager: SubnetManager
  readonly logger: Logger
  readonly clock: Clock
  /** Packet and drop counters, peers (weft_udp_*, weft_peers); absent when metrics are off. */
  readonly metrics?: BackendRecorder
}

export interface UdpNetworkOptions {
  readonly lease: Lease
  readonly network: IpNet
  readonly port: number
  readonly mtu: number
  readonly dataPath: Omit<DataPathOptions, 'mtu' | 'tunFd'>
  /** flannel0: its current fd, and recreation when it was deleted. */
  readonly tun: { readonly fd: number; ensure(): Promise<boolean> }
  /** Period of the counters log line (default 60 s). */
  readonly statsIntervalMs?: number
  /** Releases flannel0 and the socket after the worker stopped. */
  readonly release: () => void
  /** Builds the data path (tests substitute one); default starts the worker. */
  readonly startDataPath?: (options: DataPathOptions) => DataPathHandle
}

export class UdpNetwork implements Network {
  readonly lease: Lease
  readonly mtu: number
  private readonly table: PeerTable
  private readonly log: Logger
  private dataPath: DataPathHandle | undefined
  /** Counters of workers that died and were replaced. */
  private base: UdpCounters = zeroCounters()
  private refusedLogged = new Map<string, string>()
  private lastPeers: UdpNetwork['dataPathPeers'] = []

  constructor(private readonly deps: UdpNetworkDeps, private readonly options: UdpNetworkOptions) {
    this.lease = options.lease
    this.mtu = options.mtu
    this.log = deps.logger
    this.table = new PeerTable({ network: options.network, own: options.lease, port: options.port })
    deps.metrics?.observeUdp(() => this.counters())
    deps.metrics?.observePeers('udp', () => this.lastPeers.length)
  }

  /** The peer table last handed to the worker (tests, diagnostics). */
  get dataPathPeers(): ReturnType<PeerTable['evaluate']>['peers'] {
    return this.lastPeers
  }

  /** Counters since run() started (across worker restarts). */
  counters(): UdpCounters | undefined {
    const dp = this.dataPath
    return dp && addCounters(this.base, dp.counters())
  }

  async run(signal: AbortSignal): Promise<void> {
    this.dataPath = this.startDataPath()
    this.log.info('udp data path started', { port: this.options.port, mtu: this.mtu })
    try {
      await Promise.allSettled([this.consumeLeases(signal), this.statsLoop(signal), this.supervise(signal)])
    } finally {
      await this.dataPath.stop()
      this.log.info('udp data path stopped', counterFields(this.counters() as UdpCounters))
      this.options.release()
    }
  }

  private startDataPath(): DataPathHandle {
    const start = this.options.startDataPath ?? ((o: DataPathOptions) => new UdpDataPath(o))
    const dp = start({ ...this.options.dataPath, tunFd: this.options.tun.fd, mtu: this.mtu })
    if (this.lastPeers.length > 0) dp.setPeers(this.lastPeers)
    return dp
  }

  /** Restarts the worker if it dies (it should not; this keeps a bug from silencing the host). */
  private async supervise(signal: AbortSignal): Promise<void> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      const dp = this.dataPath as DataPathHandle
      const startedAt = this.deps.clock.now()
      const code = await raceAbort(dp.done, signal).catch(() => undefined)
      if (code === undefined || signal.aborted) return
      // A worker that ran for a while before failing starts the backoff over.
      if (this.deps.clock.now() - startedAt > 60_000) attempt = 0
      this.log.error('udp data path worker exited; restarting', { code, attempt }, dp.error)
      this.base = addCounters(this.base, dp.counters())
      await dp.stop()
      await this.deps.clock.sleep(backoffDelay(attempt, 100, 5000), signal).catch(() => {})
      if (signal.aborted) return
      // A deleted flannel0 is the usual way to kill the worker: bring the device back first.
      await this.options.tun.ensure().catch((err: unknown) => this.log.error('failed to recreate flannel0', {}, err))
      this.dataPath = this.startDataPath()
    }
  }

  private publish(): void {
    const { peers, refused } = this.table.evaluate()
    for (const [key, reason] of refused) {
      if (this.refusedLogged.get(key) !== reason) this.log.warn('refusing lease', { subnet: key, reason })
    }
    this.refusedLogged = new Map(refused)
    const before = new Set(this.lastPeers.map(describePeer))
    const after = new Set(peers.map(describePeer))
    for (const p of after) if (!before.has(p)) this.log.info('subnet added', { peer: p })
    for (const p of before) if (!after.has(p)) this.log.info('subnet removed', { peer: p })
    this.lastPeers = peers
    this.dataPath?.setPeers(peers)
  }

  private consumeLeases(signal: AbortSignal): Promise<void> {
    const apply = (result: LeaseWatchResult): void => {
      if (this.table.apply(result) || result.kind === 'snapshot') this.publish()
    }
    return consumeLeaseWatch({ subnetManager: this.deps.subnetManager, clock: this.deps.clock, log: this.log }, this.lease, apply, signal)
  }

  /** Logs the counters when they moved (and anything was dropped or carried). */
  private async statsLoop(signal: AbortSignal): Promise<void> {
    let last = ''
    const interval = this.options.statsIntervalMs ?? 60_000
    while (!signal.aborted) {
      try {
        await this.deps.clock.sleep(interval, signal)
      } catch {
        return
      }
      const c = this.counters()
      if (!c) continue
      const fields = counterFields(c)
      const text = JSON.stringify(fields)
      if (text !== last && (c.txPackets + c.rxPackets + totalDrops(c) > 0)) this.log.info('udp data path counters', fields)
      last = text
    }
  }
}

