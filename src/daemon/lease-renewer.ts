/**
 * Keeps our own lease alive (flannel's CompleteLease for etcd): renew at expiration minus the
 * margin, retry every minute on failure, and stop the daemon when the lease is revoked.
 */
import { WeftError } from '../errors.ts'
import type { Lease } from '../lease/lease.ts'
import type { Logger } from '../log/logger.ts'
import type { SubnetManager } from '../subnet/subnet-manager.ts'
import type { Clock } from '../util/clock.ts'
import type { LeaseRecorder } from '../metrics/recorder.ts'
import { isAbort, whenAborted } from '../util/abort.ts'

export interface LeaseRenewerOptions {
  readonly subnetManager: SubnetManager
  readonly lease: Lease
  /** --subnet-lease-renew-margin, in minutes. */
  readonly renewMarginMinutes: number
  readonly logger: Logger
  readonly clock: Clock
  /** Delay before retrying a failed renewal (flannel: 1 min). */
  readonly retryMs?: number
  /** Renewals and the expiry (weft_lease_*); absent when metrics are off. */
  readonly metrics?: LeaseRecorder
}

/**
 * Resolves when the signal aborts; rejects with LEASE_REVOKED when our key disappears
 * (deleted by an operator or expired), which the daemon turns into a clean exit.
 */
export async function keepLease(options: LeaseRenewerOptions, signal: AbortSignal): Promise<void> {
  const inner = new AbortController()
  const unlisten = whenAborted(signal, () => inner.abort(signal.reason))
  let current = options.lease
  options.metrics?.leaseExpiration(current.expiration)
  const set = (l: Lease): void => {
    current = l
    options.metrics?.leaseExpiration(l.expiration)
  }
  try {
    await Promise.race([renewLoop(options, () => current, set, inner.signal), watchOwn(options, () => current, set, inner.signal)])
  } finally {
    unlisten()
    inner.abort(new Error('lease keeper stopped'))
  }
}

async function renewLoop(options: LeaseRenewerOptions, get: () => Lease, set: (l: Lease) => void, signal: AbortSignal): Promise<void> {
  const { clock, logger } = options
  const marginMs = options.renewMarginMinutes * 60_000
  const retryMs = options.retryMs ?? 60_000
  for (;;) {
    const expiration = get().expiration
    if (expiration === undefined) {
      // A reservation has no TTL: nothing to renew. Re-check now and then in case it became a lease.
      await clock.sleep(60 * 60_000, signal)
      continue
    }
    const wait = Math.max(0, expiration - marginMs - clock.now())
    await clock.sleep(wait, signal)
    if (get().expiration !== expiration) continue // the own-lease watch moved the deadline
    try {
      const renewed = await options.subnetManager.renewLease(get(), signal)
      set(renewed)
      options.metrics?.leaseRenewal('ok')
      logger.info('lease renewed', { expiresAt: renewed.expiration === undefined ? 'never' : new Date(renewed.expiration).toISOString() })
    } catch (err) {
      if (isAbort(err, signal)) throw err
      options.metrics?.leaseRenewal('error')
      logger.error('lease renewal failed; retrying', { retryInSeconds: retryMs / 1000 }, err)
      await clock.sleep(retryMs, signal)
    }
  }
}

async function watchOwn(options: LeaseRenewerOptions, get: () => Lease, set: (l: Lease) => void, signal: AbortSignal): Promise<void> {
  for await (const result of options.subnetManager.watchLease(get(), signal)) {
    const events = result.kind === 'events' ? result.events : result.leases.map((lease) => ({ type: 'added' as const, lease }))
    if (result.kind === 'snapshot' && result.leases.length === 0) throw revoked()
    for (const event of events) {
      if (event.type === 'removed') throw revoked()
      if (event.lease.expiration !== get().expiration) set({ ...get(), expiration: event.lease.expiration })
    }
  }
  if (!signal.aborted) throw new WeftError('REGISTRY_UNAVAILABLE', `own lease watch ended unexpectedly`)
  throw signal.reason
}

function revoked(): WeftError {
  return new WeftError('LEASE_REVOKED', 'lease has been revoked; shutting down daemon')
}

