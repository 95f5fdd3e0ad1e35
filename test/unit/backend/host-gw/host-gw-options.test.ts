import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseHostGwOptions } from '../../../../src/backend/host-gw/host-gw-options.ts'
import { parseAllocOptions } from '../../../../src/backend/alloc/alloc-options.ts'

test('host-gw and alloc take no options', () => {
  assert.deepEqual(parseHostGwOptions({}), {})
  assert.deepEqual(parseAllocOptions({}), {})
  assert.throws(() => parseHostGwOptions({ directrouting: true }), /Backend: unknown key "directrouting"; the host-gw backend takes no options besides Type/)
  assert.throws(() => parseAllocOptions({ port: 1 }), /the alloc backend takes no options/)
})

test('Windows-only keys of shared mixed-cluster configs are tolerated', () => {
  assert.deepEqual(parseHostGwOptions({ name: 'cbr0' }), {})
  assert.throws(() => parseAllocOptions({ name: 'cbr0' }), /unknown key "name"/)
})
