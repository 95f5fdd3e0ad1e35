/** Polling waits shared by the tests (real time, bounded). */

export interface UntilOptions {
  /** Give up after this long (default 3 s). */
  readonly timeoutMs?: number
  /** Poll interval; 0 re-checks on every event-loop turn (lets parked async iterators run). Default 2 ms. */
  readonly everyMs?: number
}

/** Resolves once `cond()` holds; rejects with "condition not met in time" after the timeout. */
export async function until(cond: () => boolean, opts: UntilOptions = {}): Promise<void> {
  const end = Date.now() + (opts.timeoutMs ?? 3000)
  const everyMs = opts.everyMs ?? 2
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise<void>((resolve) => (everyMs === 0 ? setImmediate(resolve) : setTimeout(resolve, everyMs)))
  }
}
