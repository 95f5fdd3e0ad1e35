/** Injected time source, so renewal and resync timers can be driven by hand in tests. */
export interface Clock {
  now(): number
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      const onAbort = (): void => {
        clearTimeout(timer)
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
    }),
}

interface Sleeper {
  at: number
  resolve: () => void
}

/** A clock that only moves when `advance` is called. */
export class FakeClock implements Clock {
  private current: number
  private sleepers: Sleeper[] = []

  constructor(start = 1_700_000_000_000) {
    this.current = start
  }

  now(): number {
    return this.current
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      if (ms <= 0) return resolve()
      const sleeper: Sleeper = { at: this.current + ms, resolve }
      this.sleepers.push(sleeper)
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper)
          reject(signal.reason)
        },
        { once: true },
      )
    })
  }

  /** Number of pending sleeps (lets a test wait until the code under test is parked). */
  get pending(): number {
    return this.sleepers.length
  }

  /** Moves time forward and wakes every sleeper that is due, letting promise callbacks run. */
  async advance(ms: number): Promise<void> {
    this.current += ms
    const due = this.sleepers.filter((s) => s.at <= this.current)
    this.sleepers = this.sleepers.filter((s) => s.at > this.current)
    for (const s of due) s.resolve()
    for (let i = 0; i < 10; i++) await Promise.resolve()
  }
}

/**
 * Milliseconds since the process started, for start-up cost in logs. process.uptime() rather
 * than performance.now(): the first touch of the `performance` global loads perf_hooks (~0.3 MB
 * resident for the daemon's life).
 */
export function msSinceSpawn(): number {
  return Math.round(process.uptime() * 1000)
}
