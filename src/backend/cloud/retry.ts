/**
 * Retry with exponential backoff and jitter for cloud calls (throttling, 5xx), shared by every
 * cloud backend. A wrapper around one call, like kube-router's nlretry: callers stay linear.
 */
import type { Clock } from '../../util/clock.ts'
import type { Logger } from '../../log/logger.ts'
import { backoffDelay } from '../../util/abort.ts'
import { errorMessage } from '../../errors.ts'
import { isRetryableCloudError } from './cloud-error.ts'

export interface RetryPolicy {
  /** Total attempts including the first (flannel's AWS SDK used 5 retries = 6 attempts). */
  readonly maxAttempts: number
  /** Delay before the first retry, doubled each time. */
  readonly baseDelayMs: number
  /** Cap on one delay. */
  readonly maxDelayMs: number
}

export const defaultRetryPolicy: RetryPolicy = Object.freeze({ maxAttempts: 6, baseDelayMs: 250, maxDelayMs: 8_000 })

export interface RetryDeps {
  readonly clock: Clock
  readonly logger?: Logger
  /** Source of jitter in [0, 1); injectable so tests get exact delays. */
  readonly random?: () => number
}

export interface RetryOptions {
  /** Names the call in log lines (`CreateRoute rtb-1`). */
  readonly what: string
  readonly policy?: RetryPolicy
  /** Decides whether a failure is worth another attempt; default: retryable CloudError or a reset connection. */
  readonly isRetryable?: (err: unknown) => boolean
  readonly signal?: AbortSignal
}

/**
 * Runs `call` until it succeeds, fails with a non-retryable error, or runs out of attempts;
 * the last error is rethrown unchanged. Delays are "equal jitter": half fixed, half random,
 * so concurrent daemons hitting the same throttle spread out but still back off.
 */
export async function withRetry<T>(call: (attempt: number) => Promise<T>, deps: RetryDeps, options: RetryOptions): Promise<T> {
  const policy = options.policy ?? defaultRetryPolicy
  const isRetryable = options.isRetryable ?? isRetryableCloudError
  const random = deps.random ?? Math.random
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted()
    try {
      return await call(attempt)
    } catch (err) {
      if (options.signal?.aborted || attempt >= policy.maxAttempts || !isRetryable(err)) throw err
      const full = backoffDelay(attempt - 1, policy.baseDelayMs, policy.maxDelayMs)
      const delayMs = Math.round(full / 2 + (full / 2) * random())
      deps.logger?.warn('cloud call failed, retrying', { call: options.what, attempt, maxAttempts: policy.maxAttempts, delayMs, error: errorMessage(err) })
      await deps.clock.sleep(delayMs, options.signal)
    }
  }
}
