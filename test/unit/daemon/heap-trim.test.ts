import { test } from 'node:test'
import assert from 'node:assert/strict'
import { shouldCollect, startHeapTrim } from '../../../src/daemon/heap-trim.ts'
import { until } from '../../helpers/wait.ts'

const MiB = 1024 * 1024

test('the first check collects; later ones only after the used heap grew', () => {
  assert.equal(shouldCollect({ heapTotal: 10 * MiB, heapUsed: 9 * MiB, usedAfterLastCollection: undefined }), true)
  assert.equal(shouldCollect({ heapTotal: 12 * MiB, heapUsed: 11 * MiB, usedAfterLastCollection: 8 * MiB }), false)
  // Garbage promoted in a burst counts as used: growth since the last collection finds it.
  assert.equal(shouldCollect({ heapTotal: 16 * MiB, heapUsed: 15.5 * MiB, usedAfterLastCollection: 8 * MiB }), true)
  // Committed space V8 keeps after a collection is no reason for another one.
  assert.equal(shouldCollect({ heapTotal: 30 * MiB, heapUsed: 9 * MiB, usedAfterLastCollection: 8 * MiB }), false)
})

test('after a collection, C heap and file pages are released, and the baseline is the collected heap', async () => {
  let used = 20 * MiB
  const calls: string[] = []
  const ac = new AbortController()
  try {
    startHeapTrim({
      intervalMs: 5,
      heap: () => ({ heapTotal: 24 * MiB, heapUsed: used }),
      collect: () => { calls.push('gc'); used = 8 * MiB },
      releaseMalloc: () => calls.push('malloc'),
      releaseFilePages: () => calls.push('files'),
    }, ac.signal)
    await until(() => calls.length >= 4, { timeoutMs: 2000 })
    // Twice: the second collection compacts what the first left fragmented.
    assert.deepEqual(calls, ['gc', 'gc', 'malloc', 'files'])
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(calls.length, 4, 'no collection while the heap stays near its collected size')
    used = 15 * MiB
    await until(() => calls.length >= 8, { timeoutMs: 2000 })
  } finally {
    ac.abort()
  }
})
