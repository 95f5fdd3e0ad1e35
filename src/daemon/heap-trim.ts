/**
 * Gives memory back after bursts. A snapshot of thousands of leases leaves tens of MiB of
 * garbage that V8 keeps committed while the daemon then sits idle (no allocation pressure, so
 * no GC): RSS stayed at ~145 MiB with 5,000 vxlan peers whose live heap is ~19 MiB. A full GC
 * lets V8 shrink the heap. After a collection, `releaseMalloc` (glibc's malloc_trim) hands the C
 * heap's free pages back too (parsers, netlink buffers and the thread pool leave them in
 * per-thread arenas), and `releaseFilePages` drops the code pages start-up touched once.
 *
 * Garbage counts as used until a collection finds it, so the slack between committed and used
 * heap misses a burst that was promoted to the old space, while committed space that V8 keeps
 * after a collection (the young generation) would make slack ask for a collection every time.
 * Growth of the used heap since the last collection is the signal; the first check always
 * collects, since start-up is the largest burst.
 *
 * node:v8 and node:vm, needed to reach gc(), load only on the first collection.
 */

import { whenAborted } from '../util/abort.ts'
import { setV8Flags } from '../util/v8-flags.ts'

/** Growth of the used heap since the last collection (bytes) that is worth one. */
const GROWTH_BYTES = 6 * 1024 * 1024

export interface HeapTrimOptions {
  readonly intervalMs: number
  /** Returns freed C-heap memory to the kernel (malloc_trim); optional. */
  readonly releaseMalloc?: () => void
  /** Drops clean file pages from this process's page tables; optional. */
  readonly releaseFilePages?: () => void
  /** Heap figures (process.memoryUsage by default). */
  readonly heap?: () => { heapTotal: number; heapUsed: number }
  /** A full collection (V8's gc() by default); undefined when none can be had. */
  readonly collect?: () => void
}

export interface HeapFigures {
  readonly heapTotal: number
  readonly heapUsed: number
  /** Used heap right after the last collection; undefined before the first. */
  readonly usedAfterLastCollection: number | undefined
}

export function shouldCollect(figures: HeapFigures): boolean {
  if (figures.usedAfterLastCollection === undefined) return true
  return figures.heapUsed - figures.usedAfterLastCollection >= GROWTH_BYTES
}

export function startHeapTrim(options: HeapTrimOptions, signal: AbortSignal): void {
  const heap = options.heap ?? (() => process.memoryUsage())
  // undefined: not tried yet; null: not available, memory is merely held longer.
  let gc: (() => void) | null | undefined = options.collect
  let usedAfterLastCollection: number | undefined
  const timer = setInterval(() => {
    const { heapTotal, heapUsed } = heap()
    if (!shouldCollect({ heapTotal, heapUsed, usedAfterLastCollection })) return
    if (gc === undefined) gc = exposeGc()
    if (!gc) return
    // The first collection frees the garbage; the second sees the fragmented pages it left and
    // compacts them, so that they can be released (one alone left 47 MiB committed for 5 MiB live).
    gc()
    gc()
    usedAfterLastCollection = heap().heapUsed
    options.releaseMalloc?.()
    options.releaseFilePages?.()
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
