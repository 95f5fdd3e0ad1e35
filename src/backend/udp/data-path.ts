/**
 * Main-thread side of the udp data path: starts the forwarding worker on the TUN and UDP fds,
 * hands it peer-table snapshots, reads its counters, and stops it. The fds stay owned by the
 * caller (the worker never closes them).
 */
import { MessageChannel, Worker } from 'node:worker_threads'
import { release } from 'node:os'
import { COUNTER, CONTROL, workerSource, type WorkerInit, type WorkerPeer } from './data-path-worker.ts'
import { DropReason, type DropReasonName } from './packet.ts'
import { closeFd, openEventFd, signalEventFd } from '../../kernel/linux/udp-io.ts'
import { koffiPath } from '../../kernel/linux/koffi.ts'

/** Packet and byte counters since start; drops by reason. */
export interface UdpCounters {
  readonly txPackets: number
  readonly txBytes: number
  readonly rxPackets: number
  readonly rxBytes: number
  readonly icmpSent: number
  /** Sends that carried several packets (UDP GSO) and receives that did (UDP GRO). */
  readonly gsoMessages: number
  readonly groDatagrams: number
  readonly drops: Readonly<Record<DropReasonName, number>>
}

export interface DataPathOptions {
  readonly tunFd: number
  readonly udpFd: number
  /** flannel0's address, host order. */
  readonly tunAddr: number
  readonly localNet: number
  readonly localPrefix: number
  /** Largest packet carried (TUN MTU); slots are sized from it. */
  readonly mtu: number
  /** Packets per batch (default 64). */
  readonly batch?: number
  /** UDP GSO on send (default: when the kernel is 4.18 or newer; the worker falls back by itself). */
  readonly gso?: boolean
  /** UDP GRO on receive (default: when the kernel is 5.0 or newer and the option is accepted). */
  readonly gro?: boolean
}

/** The running worker. */
export class UdpDataPath {
  private readonly control = new SharedArrayBuffer(CONTROL.size * 4)
  private readonly counterBuf = new SharedArrayBuffer(COUNTER.size * 8)
  private readonly worker: Worker
  private readonly port: MessageChannel['port1']
  private readonly wakeFd: number
  private readonly exited: Promise<number>
  private failure: Error | undefined
  private stopping: Promise<void> | undefined

  constructor(options: DataPathOptions) {
    this.wakeFd = openEventFd()
    const channel = new MessageChannel()
    this.port = channel.port1
    const init: WorkerInit = {
      koffiPath: koffiPath(),
      tunFd: options.tunFd,
      udpFd: options.udpFd,
      wakeFd: this.wakeFd,
      tunAddr: options.tunAddr >>> 0,
      localNet: options.localNet >>> 0,
      localPrefix: options.localPrefix,
      slotSize: Math.max(2048, (options.mtu + 64 + 63) & ~63),
      batch: options.batch ?? 64,
      gso: options.gso ?? kernelAtLeast(release(), 4, 18),
      gro: options.gro ?? kernelAtLeast(release(), 5, 0),
      control: this.control,
      counters: this.counterBuf,
      port: channel.port2,
    }
    this.worker = new Worker(workerSource(), { eval: true, workerData: init, transferList: [channel.port2], name: 'weft-udp-data-path' })
    this.exited = new Promise((resolve) => {
      this.worker.on('error', (err) => { this.failure = err })
      this.worker.on('exit', (code) => resolve(code))
    })
  }

  /** Settles with the worker's exit code when it exits (after stop(), or when it died). */
  get done(): Promise<number> {
    return this.exited
  }

  /** True once the worker found UDP GSO unusable and sends one datagram per message. */
  get gsoOff(): boolean {
    return Atomics.load(new Int32Array(this.control), CONTROL.gsoOff) !== 0
  }

  /** The worker's uncaught error, if it died. */
  get error(): Error | undefined {
    return this.failure
  }

  /** Replaces the peer table (whole snapshot; the worker applies it at its next wake-up). */
  setPeers(peers: readonly WorkerPeer[]): void {
    this.port.postMessage({ peers })
    Atomics.add(new Int32Array(this.control), CONTROL.generation, 1)
    signalEventFd(this.wakeFd)
  }

  /** A consistent-enough copy of the counters (each slot is written whole). */
  counters(): UdpCounters {
    const c = new Float64Array(this.counterBuf)
    const drops = {} as Record<DropReasonName, number>
    for (const [name, code] of Object.entries(DropReason)) drops[name as DropReasonName] = c[COUNTER.dropBase + code] as number
    return {
      txPackets: c[COUNTER.txPackets] as number,
      txBytes: c[COUNTER.txBytes] as number,
      rxPackets: c[COUNTER.rxPackets] as number,
      rxBytes: c[COUNTER.rxBytes] as number,
      icmpSent: c[COUNTER.icmpSent] as number,
      gsoMessages: c[COUNTER.gsoMessages] as number,
      groDatagrams: c[COUNTER.groDatagrams] as number,
      drops,
    }
  }

  /** Stops the loop (within one poll timeout) and waits for the worker to exit. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    Atomics.store(new Int32Array(this.control), CONTROL.stop, 1)
    signalEventFd(this.wakeFd)
    const timer = setTimeout(() => void this.worker.terminate(), 2000)
    await this.exited
    clearTimeout(timer)
    this.port.close()
    closeFd(this.wakeFd)
  }
}

/** Whether a `uname -r` string is at least major.minor. */
export function kernelAtLeast(uname: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(uname)
  if (!m) return false
  const [a, b] = [Number(m[1]), Number(m[2])]
  return a > major || (a === major && b >= minor)
}

/** What UdpNetwork needs of a data path (tests substitute a fake). */
export type DataPathHandle = Pick<UdpDataPath, 'setPeers' | 'counters' | 'stop' | 'error' | 'done'>

/** Counters of two periods added (a restarted worker starts from zero). */
export function addCounters(a: UdpCounters, b: UdpCounters): UdpCounters {
  const drops = { ...a.drops }
  for (const [k, v] of Object.entries(b.drops)) drops[k as DropReasonName] += v
  return {
    txPackets: a.txPackets + b.txPackets, txBytes: a.txBytes + b.txBytes, rxPackets: a.rxPackets + b.rxPackets, rxBytes: a.rxBytes + b.rxBytes,
    icmpSent: a.icmpSent + b.icmpSent, gsoMessages: a.gsoMessages + b.gsoMessages, groDatagrams: a.groDatagrams + b.groDatagrams, drops,
  }
}

/** All-zero counters. */
export function zeroCounters(): UdpCounters {
  const drops = {} as Record<DropReasonName, number>
  for (const name of Object.keys(DropReason)) drops[name as DropReasonName] = 0
  return { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, icmpSent: 0, gsoMessages: 0, groDatagrams: 0, drops }
}

/** Total drops of a counter set. */
export function totalDrops(c: UdpCounters): number {
  return Object.values(c.drops).reduce((a, b) => a + b, 0)
}

/** Flat log fields: non-zero drops only, so the periodic line stays short. */
export function counterFields(c: UdpCounters): Record<string, number> {
  const out: Record<string, number> = { txPackets: c.txPackets, txBytes: c.txBytes, rxPackets: c.rxPackets, rxBytes: c.rxBytes, icmpSent: c.icmpSent }
  if (c.gsoMessages > 0) out.gsoMessages = c.gsoMessages
  if (c.groDatagrams > 0) out.groDatagrams = c.groDatagrams
  for (const [name, n] of Object.entries(c.drops)) if (n > 0) out[`drop_${name}`] = n
  return out
}
