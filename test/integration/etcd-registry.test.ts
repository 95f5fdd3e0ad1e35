/**
 * EtcdRegistry against a real etcd 3.4 (flannel pkg/subnet/etcd/registry_test.go scenarios),
 * with raw reads through etcdctl to check what is actually stored.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { etcdSkipReason, startEtcd, type EtcdServer } from '../helpers/etcd-server.ts'
import { EtcdRegistry } from '../../src/subnet/etcd/etcd-registry.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { isWeftError } from '../../src/errors.ts'
import type { RegistryWatchBatch } from '../../src/subnet/etcd/registry.ts'

const skip = etcdSkipReason()

const P = '/coreos.com/network'
let etcd: EtcdServer
let registry: EtcdRegistry
const signal = new AbortController().signal

const etcdctl = (...args: string[]): string =>
  execFileSync('etcdctl', [`--endpoints=${etcd.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' })

before(async () => {
  if (skip) return
  etcd = await startEtcd()
  registry = new EtcdRegistry({ endpoints: [etcd.endpoint], logger: new MemoryLogger() })
})
after(async () => {
  await registry?.close()
  await etcd?.destroy()
})

test('config: missing, then read back what etcdctl wrote', { skip }, async () => {
  assert.equal(await registry.getConfig(P, signal), undefined)
  etcdctl('put', `${P}/config`, '{"Network":"10.5.0.0/16"}')
  assert.equal(await registry.getConfig(P, signal), '{"Network":"10.5.0.0/16"}')
  await registry.putConfig('/other/network', '{"Network":"10.6.0.0/16"}', signal)
  assert.equal(etcdctl('get', '--print-value-only', '/other/network/config').trim(), '{"Network":"10.6.0.0/16"}')
})

test('create stores the exact value with a TTL lease; a second create conflicts and revokes its lease', { skip }, async () => {
  const rec = await registry.createSubnet(P, '10.5.1.0-24', '{"PublicIP":"1.2.3.4","PublicIPv6":null}', 60, signal)
  assert.notEqual(rec.leaseId, '0')
  assert.equal(etcdctl('get', '--print-value-only', `${P}/subnets/10.5.1.0-24`).trim(), '{"PublicIP":"1.2.3.4","PublicIPv6":null}')
  const before = etcdctl('lease', 'list')
  await assert.rejects(registry.createSubnet(P, '10.5.1.0-24', '{"PublicIP":"9.9.9.9","PublicIPv6":null}', 60, signal), (err: unknown) => isWeftError(err, 'LEASE_CONFLICT'))
  assert.equal(etcdctl('lease', 'list'), before)
  const got = await registry.getSubnet(P, '10.5.1.0-24', signal)
  assert.equal(got!.value, '{"PublicIP":"1.2.3.4","PublicIPv6":null}')
  assert.ok(got!.ttlSeconds! > 55 && got!.ttlSeconds! <= 60, String(got!.ttlSeconds))
})

test('update grants a fresh lease and revokes the old one; a reservation stays without lease', { skip }, async () => {
  const created = await registry.createSubnet(P, '10.5.2.0-24', '{"PublicIP":"1.1.1.2","PublicIPv6":null}', 30, signal)
  const updated = await registry.updateSubnet(P, '10.5.2.0-24', '{"PublicIP":"1.1.1.2","PublicIPv6":null,"BackendType":"vxlan"}', 90, signal)
  assert.notEqual(updated.leaseId, created.leaseId)
  const got = await registry.getSubnet(P, '10.5.2.0-24', signal)
  assert.ok(got!.ttlSeconds! > 85, String(got!.ttlSeconds))
  assert.doesNotMatch(etcdctl('lease', 'list'), new RegExp(BigInt(created.leaseId).toString(16)))

  etcdctl('put', `${P}/subnets/10.5.3.0-24`, '{"PublicIP":"1.1.1.3","PublicIPv6":null}')
  const kept = await registry.updateSubnet(P, '10.5.3.0-24', '{"PublicIP":"1.1.1.3","PublicIPv6":null,"BackendType":"udp"}', 90, signal)
  assert.equal(kept.leaseId, '0')
  const raw = JSON.parse(etcdctl('get', '-w', 'json', `${P}/subnets/10.5.3.0-24`)) as { kvs: Array<{ lease?: number }> }
  assert.equal(raw.kvs[0]!.lease ?? 0, 0)
  assert.equal((await registry.getSubnet(P, '10.5.3.0-24', signal))!.ttlSeconds, undefined)
})

test('list paginates at one revision and delete removes', { skip }, async () => {
  const small = new EtcdRegistry({ endpoints: [etcd.endpoint], logger: new MemoryLogger(), pageSize: 2 })
  try {
    for (let i = 10; i < 17; i++) etcdctl('put', `${P}/subnets/10.5.${i}.0-24`, `{"PublicIP":"1.1.1.${i}","PublicIPv6":null}`)
    const listing = await small.listSubnets(P, signal)
    const keys = listing.entries.map((e) => e.key)
    assert.ok(['10.5.10.0-24', '10.5.16.0-24', '10.5.1.0-24'].every((k) => keys.includes(k)))
    assert.equal(new Set(keys).size, keys.length)
    assert.equal(keys.length, (await registry.listSubnets(P, signal)).entries.length)
    await small.deleteSubnet(P, '10.5.16.0-24', signal)
    assert.equal(etcdctl('get', `${P}/subnets/10.5.16.0-24`), '')
  } finally {
    await small.close()
  }
})

test('watch from a revision sees puts and deletes; a compacted revision is REGISTRY_COMPACTED', { skip }, async () => {
  const start = (await registry.listSubnets(P, signal)).revision
  etcdctl('put', `${P}/subnets/10.5.20.0-24`, '{"PublicIP":"1.1.1.20","PublicIPv6":null}')
  etcdctl('del', `${P}/subnets/10.5.20.0-24`)
  const ac = new AbortController()
  const batches: RegistryWatchBatch[] = []
  for await (const b of registry.watchSubnets(P, String(BigInt(start) + 1n), ac.signal)) {
    batches.push(b)
    if (batches.flatMap((x) => x.changes).length >= 2) break
  }
  const changes = batches.flatMap((b) => b.changes)
  assert.deepEqual(changes.map((c) => `${c.type} ${c.key}`), ['put 10.5.20.0-24', 'delete 10.5.20.0-24'])
  assert.equal(changes[0]!.value, '{"PublicIP":"1.1.1.20","PublicIPv6":null}')

  await etcd.compact()
  await assert.rejects(async () => {
    for await (const _ of registry.watchSubnets(P, String(BigInt(start) + 1n), signal)) { /* nothing */ }
  }, (err: unknown) => isWeftError(err, 'REGISTRY_COMPACTED'))
})

test('a single-key watch ends quietly on abort', { skip }, async () => {
  const ac = new AbortController()
  const rev = (await registry.listSubnets(P, signal)).revision
  const done = (async () => {
    const seen: string[] = []
    for await (const b of registry.watchSubnet(P, '10.5.30.0-24', String(BigInt(rev) + 1n), ac.signal)) seen.push(...b.changes.map((c) => c.type))
    return seen
  })()
  etcdctl('put', `${P}/subnets/10.5.31.0-24`, 'x')
  etcdctl('put', `${P}/subnets/10.5.30.0-24`, 'y')
  await new Promise((r) => setTimeout(r, 300))
  ac.abort()
  assert.deepEqual(await done, ['put'])
})

test('unreachable endpoints fail over, and all down is REGISTRY_UNAVAILABLE', { skip }, async () => {
  const multi = new EtcdRegistry({ endpoints: ['http://127.0.0.1:1', etcd.endpoint], logger: new MemoryLogger(), timeoutMs: 1000 })
  const dead = new EtcdRegistry({ endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], logger: new MemoryLogger(), timeoutMs: 1000 })
  try {
    assert.equal(await multi.getConfig(P, signal), '{"Network":"10.5.0.0/16"}')
    await assert.rejects(dead.getConfig(P, signal), (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE'))
  } finally {
    await multi.close()
    await dead.close()
  }
})
