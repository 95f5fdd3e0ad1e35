/** src/kernel/apply.ts against MemoryKernel (kept under test/unit/backend: the backends own apply.ts). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ApplyFailure, applyOrdered, entryKey, entryMatches, removeAll, type KernelEntry } from '../../../src/kernel/apply.ts'
import { MemoryKernel } from '../../../src/kernel/memory/memory-kernel.ts'
import { ip, net } from './backend-fixtures.ts'

async function vxlanHost() {
  const kernel = new MemoryKernel()
  const dev = await kernel.createVxlan({ name: 'flannel.1', vni: 1, port: 0, learning: false, gbp: false, local: ip('192.168.1.2') })
  await kernel.setLink(dev.index, { up: true })
  return { kernel, index: dev.index }
}

function peerEntries(index: number, n: number, mac = `0e:00:00:00:00:0${n}`): KernelEntry[] {
  return [
    { kind: 'neigh', neigh: { index, ip: ip(`10.5.${n}.0`), mac, state: 'permanent' } },
    { kind: 'fdb', fdb: { index, mac, dst: ip(`192.168.1.${n}`) } },
    { kind: 'route', route: { dst: net(`10.5.${n}.0/24`), gateway: ip(`10.5.${n}.0`), index, onlink: true } },
  ]
}

const ops = (k: MemoryKernel, from: number) => k.ops.slice(from).map((o) => (o.errno ? `${o.op}!${o.errno}` : o.op))

test('installs in the declared order and records exactly that', async () => {
  const { kernel, index } = await vxlanHost()
  const from = kernel.ops.length
  const result = await applyOrdered(kernel, [], peerEntries(index, 3))
  assert.deepEqual(ops(kernel, from), ['replaceNeigh', 'replaceFdb', 'replaceRoute'])
  assert.deepEqual(result.installed, peerEntries(index, 3))
  assert.deepEqual(result.errors, [])
})

test('a failing entry rolls back the earlier ones in reverse and reports what is left', async () => {
  const { kernel, index } = await vxlanHost()
  const before = kernel.snapshot()
  kernel.failNext('replaceRoute', 'ENOMEM')
  const from = kernel.ops.length
  await assert.rejects(applyOrdered(kernel, [], peerEntries(index, 3)), (err: unknown) => {
    assert.ok(err instanceof ApplyFailure)
    assert.equal(err.entry.kind, 'route')
    assert.deepEqual(err.installed, [])
    assert.match(err.message, /failed to install route 10\.5\.3\.0\/24 via 10\.5\.3\.0/)
    return true
  })
  assert.deepEqual(ops(kernel, from), ['replaceNeigh', 'replaceFdb', 'replaceRoute!ENOMEM', 'deleteFdb', 'deleteNeigh'])
  assert.deepEqual(kernel.snapshot(), before)
})

test('a rollback that fails keeps the entry in the record', async () => {
  const { kernel, index } = await vxlanHost()
  kernel.failNext('replaceRoute', 'ENOMEM')
  kernel.failNext('deleteNeigh', 'EBUSY')
  const err = await applyOrdered(kernel, [], peerEntries(index, 3)).catch((e: unknown) => e)
  assert.ok(err instanceof ApplyFailure)
  assert.deepEqual(err.installed.map((e) => e.kind), ['neigh'])
})

test('an update replaces same-key entries in place and deletes only stale ones', async () => {
  const { kernel, index } = await vxlanHost()
  const first = await applyOrdered(kernel, [], peerEntries(index, 3, '0e:00:00:00:00:aa'))
  const from = kernel.ops.length
  const second = await applyOrdered(kernel, first.installed, peerEntries(index, 3, '0e:00:00:00:00:bb'))
  // Same neighbour and route keys (replaced), new FDB MAC: the old FDB entry is stale.
  assert.deepEqual(ops(kernel, from), ['replaceNeigh', 'replaceFdb', 'replaceRoute', 'deleteFdb'])
  assert.deepEqual(second.installed, peerEntries(index, 3, '0e:00:00:00:00:bb'))
  assert.deepEqual(kernel.snapshot().fdb.map((f) => f.mac), ['0e:00:00:00:00:bb'])
})

test('a stale entry shared with another peer is kept', async () => {
  const { kernel, index } = await vxlanHost()
  const first = await applyOrdered(kernel, [], peerEntries(index, 3, '0e:00:00:00:00:aa'))
  const shared = entryKey(first.installed[1]!)
  await applyOrdered(kernel, first.installed, peerEntries(index, 3, '0e:00:00:00:00:bb'), (k) => k === shared)
  assert.deepEqual(kernel.snapshot().fdb.map((f) => f.mac).sort(), ['0e:00:00:00:00:aa', '0e:00:00:00:00:bb'])
})

test('removal deletes route first, treats missing entries as success, and tries every entry', async () => {
  const { kernel, index } = await vxlanHost()
  const before = kernel.snapshot()
  const { installed } = await applyOrdered(kernel, [], peerEntries(index, 3))
  await kernel.deleteNeigh({ index, ip: ip('10.5.3.0') })
  kernel.failNext('deleteFdb', 'EBUSY')
  const from = kernel.ops.length
  const result = await removeAll(kernel, installed)
  assert.deepEqual(ops(kernel, from), ['deleteRoute', 'deleteFdb!EBUSY', 'deleteNeigh!ENOENT'])
  assert.deepEqual(result.left.map((e) => e.kind), ['fdb'])
  await removeAll(kernel, result.left)
  assert.deepEqual(kernel.snapshot(), before)
})

test('entryMatches compares only what the backend set', () => {
  const want: KernelEntry = { kind: 'route', route: { dst: net('10.5.3.0/24'), gateway: ip('192.168.1.3') } }
  assert.ok(entryMatches(want, { kind: 'route', route: { dst: net('10.5.3.0/24'), gateway: ip('192.168.1.3'), index: 7, table: 254, scope: 'universe' } }))
  assert.ok(!entryMatches(want, { kind: 'route', route: { dst: net('10.5.3.0/24'), gateway: ip('192.168.1.4'), index: 7 } }))
  const onlink: KernelEntry = { kind: 'route', route: { dst: net('10.5.3.0/24'), gateway: ip('10.5.3.0'), index: 5, onlink: true } }
  assert.ok(!entryMatches(onlink, { kind: 'route', route: { dst: net('10.5.3.0/24'), gateway: ip('10.5.3.0'), index: 6, onlink: true } }))
  const neigh: KernelEntry = { kind: 'neigh', neigh: { index: 5, ip: ip('10.5.3.0'), mac: '0E:00:00:00:00:01', state: 'permanent' } }
  assert.ok(entryMatches(neigh, { kind: 'neigh', neigh: { index: 5, ip: ip('10.5.3.0'), mac: '0e:00:00:00:00:01', state: 'permanent' } }))
  assert.ok(!entryMatches(neigh, { kind: 'neigh', neigh: { index: 5, ip: ip('10.5.3.0'), mac: '0e:00:00:00:00:01', state: 'stale' } }))
  assert.equal(entryKey(neigh), entryKey({ kind: 'neigh', neigh: { index: 5, ip: ip('10.5.3.0') } }))
})

test('a failed update keeps the previous versions it never replaced in the record', async () => {
  const { kernel, index } = await vxlanHost()
  const first = await applyOrdered(kernel, [], peerEntries(index, 3, '0e:00:00:00:00:aa'))
  kernel.failNext('replaceFdb', 'EBUSY')
  // Same neighbour/FDB/route keys (same MAC), new public IP: the FDB replace fails.
  const next: KernelEntry[] = peerEntries(index, 3, '0e:00:00:00:00:aa').map((e) => (e.kind === 'fdb' ? { kind: 'fdb', fdb: { ...e.fdb, dst: ip('192.168.1.99') } } : e))
  const err = await applyOrdered(kernel, first.installed, next).catch((e: unknown) => e)
  assert.ok(err instanceof ApplyFailure)
  // The neighbour was replaced then rolled back; the old FDB entry and the old route remain.
  assert.deepEqual(err.installed.map((e) => e.kind), ['fdb', 'route'])
  const before = kernel.snapshot()
  assert.equal(before.routes.filter((r) => r.index === index && r.gateway).length, 1)
  await removeAll(kernel, err.installed)
  assert.equal(kernel.snapshot().routes.filter((r) => r.index === index && r.gateway).length, 0)
  assert.deepEqual(kernel.snapshot().fdb, [])
})
