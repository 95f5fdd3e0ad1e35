/**
 * Every data-plane backend consumes the lease watch the same way: results in order, and when
 * the watch ends or fails, a restart with backoff (100 ms → 5 s) until the signal aborts.
 */
import type { Lease, LeaseWatchResult } from '../lease/lease.ts'
import type { Logger } from '../log/logger.ts'
import type { SubnetManager } from '../subnet/subnet-manager.ts'
import type { Clock } from '../util/clock.ts'
import { backoffDelay, isAbort, raceAbort } from '../util/abort.ts'

export interface LeaseWatchConsumer {
  readonly subnetManager: SubnetManager
  readonly clock: Clock
  readonly log: Logger
}

export async function consumeLeaseWatch(deps: LeaseWatchConsumer, own: Lease | undefined, onResult: (result: LeaseWatchResult) => void, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const iterator = deps.subnetManager.watchLeases(own, signal)[Symbol.asyncIterator]()
      try {
        for (;;) {
          const step = await raceAbort(iterator.next(), signal)
          if (step.done) break
          attempt = 0
          onResult(step.value)
        }
      } finally {
        void iterator.return?.()?.catch(() => {})
      }
      if (signal.aborted) return
      deps.log.warn('lease watch ended; restarting')
    } catch (err) {
      if (signal.aborted || isAbort(err, signal)) return
      deps.log.error('lease watch failed; restarting', { attempt }, err)
    }
    await deps.clock.sleep(backoffDelay(attempt, 100, 5000), signal).catch(() => {})
  }
}
