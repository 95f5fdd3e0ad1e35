import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cleanFileMappings } from '../../../src/kernel/linux/file-pages.ts'

/** One smaps entry with the lines cleanFileMappings reads. */
function entry(range: string, perms: string, path: string, anonymousKb: number, vmFlags = 'rd mr mw me sd'): string {
  return [`${range} ${perms} 00000000 fe:00 260689                     ${path}`, 'Size:               7612 kB', 'Rss:                6800 kB', `Anonymous:          ${anonymousKb} kB`, `VmFlags: ${vmFlags}`].join('\n')
}

test('clean read-only private file mappings are chosen, with their extent', () => {
  const smaps = [
    entry('00400000-00b6f000', 'r--p', '/usr/bin/node', 0),
    entry('00b72000-025fe000', 'r-xp', '/usr/bin/node', 0),
    entry('7f0000000000-7f0000001000', 'r--p', '/usr/lib/x86_64-linux-gnu/libc.so.6', 0),
  ].join('\n')
  assert.deepEqual(cleanFileMappings(smaps), [
    { start: 0x400000n, length: 0xb6f000 - 0x400000 },
    { start: 0xb72000n, length: 0x25fe000 - 0xb72000 },
    { start: 0x7f0000000000n, length: 0x1000 },
  ])
})

test('writable, shared, anonymous, relocated (copy-on-write) and locked mappings are left alone', () => {
  const smaps = [
    entry('0563a000-0563e000', 'r--p', '/usr/bin/node', 16), // RELRO: relocated pages are anonymous
    entry('0563e000-0565d000', 'rw-p', '/usr/bin/node', 0),
    entry('10000000-10001000', 'r--s', '/dev/shm/x', 0),
    entry('20000000-20040000', 'r--p', '', 0),
    entry('30000000-30001000', 'r--p', '[vdso]', 0),
    entry('40000000-40001000', 'r-xp', '/usr/lib/liblocked.so', 0, 'rd ex mr mw me lo'),
  ].join('\n')
  assert.deepEqual(cleanFileMappings(smaps), [])
})

test('a mapping whose Anonymous line is missing is not taken as clean', () => {
  const smaps = '00400000-00b6f000 r--p 00000000 fe:00 260689 /usr/bin/node\nSize: 7612 kB\nVmFlags: rd mr\n'
  assert.deepEqual(cleanFileMappings(smaps), [])
})

test('this process\'s own smaps parses into ranges that include the node binary', async () => {
  const { readFileSync } = await import('node:fs')
  const ranges = cleanFileMappings(readFileSync('/proc/self/smaps', 'utf8'))
  assert.ok(ranges.length > 0)
  for (const r of ranges) assert.ok(r.length > 0 && r.length % 4096 === 0)
})
