/**
 * Retries one API call the way start-up needs it: 401/403 end it at once (a wrong token never
 * heals by waiting, and the operator needs the one clear line now), answers the caller expects
 * to wait for (a node not registered yet) are logged as such, the rest back off 0.5 s → 5 s
 * with jitter. Honours Retry-After.
 */
import { isWeftError } from '../../errors.ts'
import type { Logger } from '../../log/logger.ts'
import type { Clock } from '../../util/clock.ts'
import { KubeApiError } from './kube-api.ts'

export interface RetryOptions {
  /** The request, for log lines ("GET node \"n1\""). */
  readonly what: string
  readonly logger: Logger
  readonly clock: Clock
  readonly signal: AbortSignal
  /** A reason to wait (logged as a warning, not an error) for errors that are expected to clear. */
  readonly waitingFor?: (err: unknown) => string | undefined
  /** Keep trying after 401/403 too (background work that must not stop the daemon). */
  readonly forever?: boolean
  readonly random?: () => number
}

const BASE_MS = 500
const MAX_MS = 5000
/** The same failure is logged at most this often. */
const LOG_EVERY_MS = 5000

export async function retryApi<T>(call: () => Promise<T>, options: RetryOptions): Promise<T> {
  const { logger, clock, signal } = options
  const random = options.random ?? Math.random
  let lastLog = { text: '', at: -Infinity }
  for (let attempt = 0; ; attempt++) {
    try {
      return await call()
    } catch (err) {
      if (signal.aborted) throw signal.reason
      if (!isRetryable(err, options.forever === true)) throw err
      const cap = Math.min(MAX_MS, BASE_MS * 2 ** Math.min(attempt, 10))
      const retryAfter = err instanceof KubeApiError && err.retryAfterSeconds !== undefined ? err.retryAfterSeconds * 1000 : 0
      const delay = Math.max(retryAfter, Math.round(cap / 2 + random() * (cap / 2)))
      const waiting = options.waitingFor?.(err)
      const text = waiting ?? (err instanceof Error ? err.message : String(err))
      if (text !== lastLog.text || clock.now() - lastLog.at >= LOG_EVERY_MS) {
        if (waiting) logger.warn('waiting', { request: options.what, reason: waiting, retryInMs: delay })
        else logger.warn('kube API request failed; retrying', { request: options.what, retryInMs: delay }, err)
        lastLog = { text, at: clock.now() }
      }
      await clock.sleep(delay, signal)
    }
  }
}

/** Only the API's own answers are retried: a bug in weft (a TypeError) must surface, not loop. */
function isRetryable(err: unknown, forever: boolean): boolean {
  if (!isWeftError(err)) return false
  if (err.code === 'REGISTRY_DENIED') return forever
  return err.code === 'REGISTRY_UNAVAILABLE' || err.code === 'REGISTRY_NOT_FOUND' || err.code === 'REGISTRY_COMPACTED'
}
