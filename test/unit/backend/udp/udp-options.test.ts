import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseUdpOptions } from '../../../../src/backend/udp/udp-options.ts'

test('udp Port defaults to 8285 and must be 1..65535', () => {
  assert.deepEqual(parseUdpOptions({}), { port: 8285 })
  assert.deepEqual(parseUdpOptions({ port: 7890 }), { port: 7890 })
  assert.throws(() => parseUdpOptions({ port: 0 }), /^ConfigError: Backend\.Port: must be in 1\.\.65535, got 0$/)
  assert.throws(() => parseUdpOptions({ port: '7890' }), /Backend\.Port: must be an integer, got string "7890"/)
  assert.throws(() => parseUdpOptions({ vni: 1 }), /Backend: unknown key "vni"; expected one of Type, Port/)
})
