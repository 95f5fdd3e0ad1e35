import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backendRegistry, define, knownBackendTypes } from '../../../src/backend/registry.ts'
import { isWeftError } from '../../../src/errors.ts'

test('registry lists the built-in backends by flannel type string', () => {
  for (const t of ['alloc', 'host-gw', 'udp', 'vxlan']) {
    assert.ok(knownBackendTypes().includes(t), t)
    assert.equal(backendRegistry[t]!.type, t)
  }
  assert.deepEqual(knownBackendTypes({ a: define('a', () => ({}), () => Promise.reject(new Error('x'))) }), ['a'])
})

test('alloc loads its factory; each parseOptions is the backend\'s own', async () => {
  const factory = await backendRegistry.alloc!.load()
  assert.equal(typeof factory, 'function')
  assert.deepEqual(backendRegistry.udp!.parseOptions({}), { port: 8285 })
  assert.equal((backendRegistry.vxlan!.parseOptions({}) as { vni: number }).vni, 1)
})

test('a backend without an implementation rejects load with BACKEND_UNSUPPORTED', async () => {
  // Once vxlan/host-gw/udp land, their load resolves; this test then checks any unbuilt entry.
  const unbuilt = define('x-test', () => ({}), () => Promise.reject(new Error('never')))
  await assert.rejects(unbuilt.load(), /never/)
  for (const t of knownBackendTypes()) {
    try {
      const f = await backendRegistry[t]!.load()
      assert.equal(typeof f, 'function', t)
    } catch (err) {
      assert.ok(isWeftError(err, 'BACKEND_UNSUPPORTED'), `${t}: ${String(err)}`)
      assert.equal((err as Error).message, `backend ${t} is not built yet`)
    }
  }
})
