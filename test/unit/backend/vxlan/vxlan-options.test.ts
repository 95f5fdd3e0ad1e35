import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseVxlanOptions } from '../../../../src/backend/vxlan/vxlan-options.ts'
import { isWeftError } from '../../../../src/errors.ts'

function fails(section: Record<string, unknown>, field: string, text: string): void {
  assert.throws(() => parseVxlanOptions(section), (err: unknown) => {
    assert.ok(isWeftError(err, 'CONFIG_INVALID'))
    assert.equal((err as { field?: string }).field, field)
    assert.ok(err.message.includes(text), err.message)
    return true
  })
}

test('defaults are flannel\'s', () => {
  assert.deepEqual(parseVxlanOptions({}), { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 0 })
})

test('every option is read', () => {
  assert.deepEqual(parseVxlanOptions({ vni: 4096, port: 4789, gbp: true, learning: true, directrouting: true, mtu: 9000 }),
    { vni: 4096, port: 4789, gbp: true, learning: true, directRouting: true, mtu: 9000 })
  assert.deepEqual(parseVxlanOptions({ vni: null, mtu: null }), { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 0 })
})

test('ranges', () => {
  assert.equal(parseVxlanOptions({ vni: 2 ** 24 - 1 }).vni, 16777215)
  fails({ vni: 0 }, 'Backend.VNI', 'must be in 1..16777215, got 0')
  fails({ vni: 2 ** 24 }, 'Backend.VNI', 'must be in 1..16777215, got 16777216')
  fails({ vni: 1.5 }, 'Backend.VNI', 'must be an integer, got number 1.5')
  fails({ vni: '1' }, 'Backend.VNI', 'must be an integer, got string "1"')
  assert.equal(parseVxlanOptions({ port: 65535 }).port, 65535)
  fails({ port: 65536 }, 'Backend.Port', 'must be in 0..65535')
  fails({ port: -1 }, 'Backend.Port', 'must be in 0..65535')
  assert.equal(parseVxlanOptions({ mtu: 68 }).mtu, 68)
  fails({ mtu: 67 }, 'Backend.MTU', 'must be 0 (take the interface MTU) or in 68..65535, got 67')
  fails({ mtu: 65536 }, 'Backend.MTU', 'must be in 0..65535')
})

test('booleans must be JSON booleans', () => {
  fails({ gbp: 'true' }, 'Backend.GBP', 'must be a boolean (true or false), got string "true"')
  fails({ learning: 1 }, 'Backend.Learning', 'got number 1')
  fails({ directrouting: [] }, 'Backend.DirectRouting', 'got array')
})

test('unknown keys list the known ones', () => {
  fails({ vnid: 1 }, 'Backend', 'unknown key "vnid"; expected one of Type, VNI, Port, GBP, Learning, DirectRouting, MTU')
})

test('Windows-only Name and MacPrefix are tolerated and not listed as options', () => {
  assert.equal(parseVxlanOptions({ name: 'vxlan0', macprefix: '0E-2A', vni: 4096, port: 4789 }).vni, 4096)
  fails({ nam: 'x' }, 'Backend', 'expected one of Type, VNI, Port, GBP, Learning, DirectRouting, MTU')
})
