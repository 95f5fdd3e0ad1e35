/**
 * For backends whose per-peer work is not kernel entries (extension: commands; ipsec: IKE
 * connections): lease watch results applied one at a time, in order, as added/removed calls.
 * A snapshot becomes removals of the peers it lacks, then additions of all it holds.
 */
import type { Family } from '../ip/ip.ts'
import type { Lease, LeaseWatchResult } from '../lease/lease.ts'
import type { Logger } from '../log/logger.ts'
import { leaseKey } from './lease-validation.ts'

export abstract class SerialLeaseQueue {
  /** Set by the network's run(): results are not applied once it aborts. */
  signal: AbortSignal = new AbortController().signal
  /** Programmed peers by lease key. */
  protected readonly peers = new Map<string, Lease>()
  private tail: Promise<void> = Promise.resolve()

  constructor(
    protected readonly log: Logger,
    private readonly families: readonly Family[],
    private readonly what: string,
  ) {}

  protected abstract added(lease: Lease): Promise<void>
  protected abstract removed(lease: Lease): Promise<void>

  protected keyOf(lease: Lease): string | undefined {
    return leaseKey(lease, this.families)
  }

  submit(result: LeaseWatchResult): void {
    this.tail = this.tail.then(() => this.handle(result)).catch((err: unknown) => this.log.error(`${this.what}: handling lease events failed`, {}, err))
  }

  /** Resolves once every submitted result was applied. */
  idle(): Promise<void> {
    return this.tail
  }

  private async handle(result: LeaseWatchResult): Promise<void> {
    if (result.kind === 'events') {
      for (const e of result.events) {
        if (this.signal.aborted) return
        await (e.type === 'added' ? this.added(e.lease) : this.removed(e.lease))
      }
      return
    }
    const present = new Set(result.leases.map((l) => this.keyOf(l)))
    for (const [key, lease] of [...this.peers]) if (!present.has(key)) await this.removed(lease)
    for (const lease of result.leases) await this.added(lease)
  }
}
