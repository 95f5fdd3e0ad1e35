/** True for the rejection value of an aborted operation: cancellation is not an error. */
export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted && err === signal.reason) return true
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR')
}

/** Exponential backoff delays: base, 2·base, ... capped at max. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30))
}
