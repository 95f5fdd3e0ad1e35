/**
 * Gives memory back after bursts. A snapshot of thousands of leases leaves tens of MiB of
 * garbage that V8 keeps committed while the daemon then sits idle (no allocation pressure, so
 * no GC): RSS stayed at ~145 MiB with 5,000 vxlan peers whose live heap is ~19 MiB. When the
 * heap holds much more than it uses, a full GC lets V8 shrink it; a few rounds reach the floor.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Committed-but-unused heap (bytes) that is worth a full collection. */
const SLACK_BYTES = 12 * 1024 * 1024

export function startHeapTrim(intervalMs: number, signal: AbortSignal): void {
  let gc: (() => void) | undefined
  try {
    // The documented way to reach gc() without a command-line flag, which the
    // `#!/usr/bin/env node` launcher cannot pass.
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  } catch {
    return // not available: memory is merely held longer
  }
  const timer = setInterval(() => {
    const { heapTotal, heapUsed } = process.memoryUsage()
    if (heapTotal - heapUsed > SLACK_BYTES) gc?.()
  }, intervalMs)
  timer.unref()
  signal.addEventListener('abort', () => clearInterval(timer), { once: true })
}
