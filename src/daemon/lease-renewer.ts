/**
 * Keeps our own lease alive (flannel's CompleteLease for etcd): renew at expiration minus the
 * margin, retry every minute on failure, and take the key back when another writer replaces or
 * deletes it (flanneld exits on a deleted key and waits for its supervisor).
 */
import { WeftError, isWeftError } from '../errors.ts'
import type { Lease } from '../lease/lease.ts'
import type { Logger } from '../log/logger.ts'
import type { SubnetManager } from '../subnet/subnet-manager.ts'
import type { Clock } from '../util/clock.ts'
import type { LeaseRecorder } from '../metrics/recorder.ts'
import { backoffDelay, isAbort, whenAborted } from '../util/abort.ts'
import { encodeLeaseAttrs } from '../lease/lease-codec.ts'
import { formatCidr, formatIp } from '../ip/ip.ts'

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
 * Resolves when the signal aborts; rejects with LEASE_REVOKED when our key is gone for good (no
 * reclaim in this manager, or another host holds the subnet after ours lapsed), which the
 * daemon turns into a clean exit.
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

/**
 * Follows our key. A write with our attributes moves the renewal deadline. Anything else is
 * another writer's (a misconfigured host, a restored backup, an operator): with a manager that
 * can reclaim, our lease is written back at once, as flanneld does, since this host's pods hold
 * addresses in this subnet; a deleted key is re-created instead of ending the daemon. Only when
 * our lease had lapsed before another host took the subnet is the subnet theirs: then the daemon
 * ends (LEASE_REVOKED) and its restart acquires a new one.
 */
async function watchOwn(options: LeaseRenewerOptions, get: () => Lease, set: (l: Lease) => void, signal: AbortSignal): Promise<void> {
  const pacer = new TakebackPacer(options.clock)
  for await (const result of options.subnetManager.watchLease(get(), signal)) {
    // Only the latest state of the key matters (a delete then a put in one batch is a put).
    const last = result.kind === 'events' ? result.events[result.events.length - 1] : undefined
    const seen = result.kind === 'snapshot' ? result.leases[0] : last?.type === 'added' ? last.lease : undefined
    if (result.kind === 'events' && !last) continue
    if (seen && sameAttrs(seen, get())) {
      if (seen.expiration !== get().expiration) set({ ...get(), expiration: seen.expiration })
      continue
    }
    if (!options.subnetManager.reclaimLease) {
      if (!seen) throw revoked('lease has been revoked; shutting down daemon')
      continue
    }
    if (seen && lapsed(get(), options.clock)) {
      throw takenAfterLapse(get(), publicIPOf(seen))
    }
    await reclaim(options, get, set, seen, pacer, signal)
  }
  if (!signal.aborted) throw new WeftError('REGISTRY_UNAVAILABLE', `own lease watch ended unexpectedly`)
  throw signal.reason
}

async function reclaim(options: LeaseRenewerOptions, get: () => Lease, set: (l: Lease) => void, seen: Lease | undefined, pacer: TakebackPacer, signal: AbortSignal): Promise<void> {
  const { logger, clock } = options
  const fields = { subnet: subnetText(get()), ourPublicIP: publicIPOf(get()), ...(seen ? { theirPublicIP: publicIPOf(seen) } : {}) }
  const delay = pacer.next()
  if (seen) {
    logger.error('own lease key overwritten by another writer; writing ours back', { ...fields, takebacks: pacer.count, ...(delay > 0 ? { inMs: delay, hint: 'another writer keeps claiming this subnet: two hosts on one subnet break both; fix the other host' } : {}) })
  } else {
    logger.warn('own lease key deleted or no longer a lease; re-creating it', { ...fields, takebacks: pacer.count })
  }
  await clock.sleep(delay, signal)
  for (let failures = 0; ; failures++) {
    try {
      // A lapsed lease left the subnet free: re-create it if still free, but take nobody's.
      const onlyIfAbsent = lapsed(get(), clock)
      const result = await options.subnetManager.reclaimLease!(get(), signal, { onlyIfAbsent })
      if (onlyIfAbsent && result.found === 'other') throw takenAfterLapse(get(), result.otherPublicIP ?? 'unknown')
      set(result.lease)
      if (result.found !== 'ours') logger.warn('own lease restored', { ...fields, found: result.found, ...(result.otherPublicIP ? { theirPublicIP: result.otherPublicIP } : {}) })
      return
    } catch (err) {
      if (isAbort(err, signal) || isWeftError(err, 'LEASE_REVOKED')) throw err
      const retryMs = backoffDelay(failures, 500, 30_000)
      logger.error('could not restore own lease; retrying', { ...fields, retryInMs: retryMs }, err)
      await clock.sleep(retryMs, signal)
    }
  }
}

/**
 * Spacing between takebacks: the first ones at once (a backup restore, a stray put), then
 * doubling from 1 s to 60 s while another writer keeps overwriting, so a fight with a live host
 * costs the store a write a minute, not a write storm. Quiet for 10 min resets it.
 */
export class TakebackPacer {
  count = 0
  private last = -Infinity
  constructor(private readonly clock: Clock) {}

  next(): number {
    const now = this.clock.now()
    if (now - this.last > 10 * 60_000) this.count = 0
    this.last = now
    this.count++
    return this.count <= 2 ? 0 : backoffDelay(this.count - 3, 1000, 60_000)
  }
}

function sameAttrs(a: Lease, b: Lease): boolean {
  return encodeLeaseAttrs(a.attrs) === encodeLeaseAttrs(b.attrs)
}

/** Our lease ran out before the other write (etcd dropped our key; the subnet was free). */
function lapsed(lease: Lease, clock: Clock): boolean {
  return lease.expiration !== undefined && clock.now() >= lease.expiration
}

function subnetText(lease: Lease): string {
  return lease.subnet ? formatCidr(lease.subnet) : lease.ipv6Subnet ? formatCidr(lease.ipv6Subnet) : ''
}

function publicIPOf(lease: Lease): string {
  const ip = lease.attrs.publicIP ?? lease.attrs.publicIPv6
  return ip ? formatIp(ip) : 'none'
}

function takenAfterLapse(own: Lease, theirs: string): WeftError {
  return revoked(`lease had expired and subnet ${subnetText(own)} now belongs to PublicIP ${theirs}; exiting so that a restart acquires a new subnet`)
}

function revoked(message: string): WeftError {
  return new WeftError('LEASE_REVOKED', message)
}
