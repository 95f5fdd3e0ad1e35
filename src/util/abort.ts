/** True for the rejection value of an aborted operation: cancellation is not an error. */
export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted && err === signal.reason) return true
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR')
}

/**
 * Calls `fn` once when the signal aborts, or at once when it already has: a bare
 * addEventListener never fires for a signal aborted before it was added, which leaves
 * whatever `fn` would stop running forever. Returns the remover.
 */
export function whenAborted(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn()
    return () => {}
  }
  signal.addEventListener('abort', fn, { once: true })
  return () => signal.removeEventListener('abort', fn)
}

/** Resolves when the signal aborts, at once if it already has (a Network with no data path runs like this). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => void whenAborted(signal, resolve))
}

/** Exponential backoff delays: base, 2·base, ... capped at max. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30))
}

/** Rejects with the signal's reason as soon as it aborts, even if `promise` never settles. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v) },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e) },
    )
  })
}
