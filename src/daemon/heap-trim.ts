/**
 * Gives memory back after bursts. A snapshot of thousands of leases leaves tens of MiB of
 * garbage that V8 keeps committed while the daemon then sits idle (no allocation pressure, so
 * no GC): RSS stayed at ~145 MiB with 5,000 vxlan peers whose live heap is ~19 MiB. When the
 * heap holds much more than it uses, a full GC lets V8 shrink it; a few rounds reach the floor.
 * After a collection, `releaseMalloc` (glibc's malloc_trim) hands the C heap's free pages back
 * too: parsers, netlink buffers and the thread pool leave them in per-thread arenas.
 *
 * node:v8 and node:vm, needed to reach gc(), load only on the first burst: an idle daemon that
 * never sees one keeps them (~0.3 MB resident) out of memory.
 */

import { whenAborted } from '../util/abort.ts'
import { setV8Flags } from '../util/v8-flags.ts'

/** Committed-but-unused heap (bytes) that is worth a full collection. */
const SLACK_BYTES = 12 * 1024 * 1024

export interface HeapTrimOptions {
  readonly intervalMs: number
  /** Returns freed C-heap memory to the kernel (malloc_trim); optional. */
  readonly releaseMalloc?: () => void
}

export function startHeapTrim(options: HeapTrimOptions, signal: AbortSignal): void {
  // undefined: not tried yet; null: not available, memory is merely held longer.
  let gc: (() => void) | null | undefined
  const timer = setInterval(() => {
    const { heapTotal, heapUsed } = process.memoryUsage()
    if (heapTotal - heapUsed <= SLACK_BYTES) return
    if (gc === undefined) gc = exposeGc()
    if (!gc) return
    gc()
    options.releaseMalloc?.()
  }, options.intervalMs)
  timer.unref()
  whenAborted(signal, () => clearInterval(timer))
}

/** The documented way to reach gc() without a command-line flag, which `node bin/weftd` cannot pass. */
function exposeGc(): (() => void) | null {
  if (!setV8Flags('--expose-gc')) return null
  try {
    return process.getBuiltinModule('node:vm').runInNewContext('gc') as () => void
  } catch {
    return null
  }
}
