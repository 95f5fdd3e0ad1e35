import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('../..', import.meta.url))

// In a child process, so that the test runner's own pages are not the ones dropped.
const CHILD = `
import { readFileSync } from 'node:fs'
import { releaseCleanFilePages } from './src/kernel/linux/file-pages.ts'
import { libc } from './src/kernel/linux/libc.ts'
const fileKb = () => Number(/RssFile:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1])
await import('node:https'); await import('node:zlib')
const before = fileKb()
const advised = releaseCleanFilePages(libc().madvise)
const after = fileKb()
// Everything still runs: code pages come back from the page cache on use.
const { createHash } = await import('node:crypto')
const digest = createHash('sha256').update(JSON.stringify({ before, after })).digest('hex').length
console.log(JSON.stringify({ before, after, advised, digest }))
`

test('clean file pages leave the process, and it keeps running', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { cwd: REPO, encoding: 'utf8', timeout: 30_000 })
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; after: number; advised: number; digest: number }
  assert.equal(out.digest, 64)
  assert.ok(out.advised > 20 * 1024 * 1024, `advised ${out.advised} bytes`)
  assert.ok(out.after < out.before / 2, `file pages ${out.before} kB → ${out.after} kB`)
})
