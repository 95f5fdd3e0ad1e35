/**
 * bin/launch.cjs runs a bundle from a V8 code cache beside it. The cache is an optimisation only:
 * a missing, corrupt or stale one must never stop the program, and a good one is used as is.
 * Runs the real `weft version` from a copy of bin/ and dist/, so the repository's cache is untouched.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('../../..', import.meta.url))
const built = existsSync(join(REPO, 'dist', 'weft.cjs'))

function copyInstall(bundle?: string): { dir: string; cache: string; run: () => ReturnType<typeof spawnSync> } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-launch-'))
  mkdirSync(join(dir, 'bin'))
  mkdirSync(join(dir, 'dist'))
  for (const f of ['launch.cjs', 'weft', 'package.json']) copyFileSync(join(REPO, 'bin', f), join(dir, 'bin', f))
  if (bundle === undefined) copyFileSync(join(REPO, 'dist', 'weft.cjs'), join(dir, 'dist', 'weft.cjs'))
  else writeFileSync(join(dir, 'dist', 'weft.cjs'), bundle)
  const cache = join(dir, 'dist', 'weft.cjs.cache')
  return { dir, cache, run: () => spawnSync(process.execPath, [join(dir, 'bin', 'weft'), 'version'], { encoding: 'utf8', timeout: 20_000 }) }
}

test('first run writes the cache, the next run uses it unchanged', { skip: !built && 'dist/ not built' }, () => {
  const { dir, cache, run } = copyInstall()
  try {
    const first = run()
    assert.equal(first.status, 0, String(first.stderr))
    assert.match(String(first.stdout), /^v\d+\.\d+\.\d+/)
    assert.ok(statSync(cache).size > 1000, 'a cache of compiled code was written')
    const written = readFileSync(cache)
    const second = run()
    assert.equal(second.status, 0, String(second.stderr))
    assert.equal(String(second.stdout), String(first.stdout))
    assert.deepEqual(readFileSync(cache), written, 'an accepted cache is not rewritten')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a corrupt cache is rejected by V8, the program runs, and the cache is rebuilt', { skip: !built && 'dist/ not built' }, () => {
  const { dir, cache, run } = copyInstall()
  try {
    writeFileSync(cache, Buffer.from('not a V8 code cache at all'.repeat(100)))
    const r = run()
    assert.equal(r.status, 0, String(r.stderr))
    assert.match(String(r.stdout), /^v\d+\.\d+\.\d+/)
    assert.equal(String(r.stderr), '', 'nothing printed about the cache')
    assert.ok(statSync(cache).size > 1000 && !readFileSync(cache).toString('latin1').includes('not a V8'), 'rebuilt')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a cache that cannot be read or written (a directory in its place) leaves the program running', { skip: !built && 'dist/ not built' }, () => {
  const { dir, cache, run } = copyInstall()
  try {
    mkdirSync(join(cache, 'occupied'), { recursive: true })
    const r = run()
    assert.equal(r.status, 0, String(r.stderr))
    assert.match(String(r.stdout), /^v\d+\.\d+\.\d+/)
    assert.equal(String(r.stderr), '')
    assert.ok(statSync(cache).isDirectory(), 'left as it was')
    assert.deepEqual(readdirSync(join(dir, 'dist')).filter((f) => f.endsWith('.tmp')), [], 'no temp file left behind')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a program that changes a V8 flag gets its cache written first, so the next run accepts it', { skip: !built && 'dist/ not built' }, () => {
  // What src/util/v8-flags.ts does; V8 rejects a cache made after the flag change.
  const { dir, cache, run } = copyInstall(`
    function work(n) { let s = 0; for (let i = 0; i < n; i++) s += i; return s }
    work(10)
    process.emit('weft:before-v8-flags')
    require('node:v8').setFlagsFromString('--no-opt')
    console.log('v0.0.0 flags changed', work(5))
  `)
  try {
    const first = run()
    assert.equal(first.status, 0, String(first.stderr))
    assert.match(String(first.stdout), /flags changed 10/)
    const written = statSync(cache).ino
    const second = run()
    assert.equal(second.status, 0, String(second.stderr))
    assert.equal(statSync(cache).ino, written, 'the cache was accepted (a rejected one is written anew)')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
