/**
 * One behaviour suite for every Registry: MemoryRegistry runs it in test/unit, EtcdRegistry
 * against a real etcd in test/integration, so the fake cannot drift from etcd unnoticed.
 * Only time-independent behaviour lives here (TTL expiry is tested per implementation).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isWeftError } from '../../../../src/errors.ts'
import type { Registry, RegistryChange } from '../../../../src/subnet/etcd/registry.ts'

export interface RegistryHarness {
  readonly registry: Registry
  /** Writes a raw key as `etcdctl put` would (with a TTL lease when ttlSeconds is given). */
  rawPut(fullKey: string, value: string, ttlSeconds?: number): Promise<void>
  /** Compacts history up to the current revision. */
  compact(): Promise<void>
}

const signal = new AbortController().signal

/** Registers the contract tests; `setup` gives each test a harness on an isolated prefix. */
export function registryContract(name: string, setup: () => Promise<RegistryHarness>, options: { skip?: string | false } = {}): void {
  const skip = options.skip ?? false
  let n = 0
  const prefix = (): string => `/contract${++n}/network`

  test(`${name}: config is undefined until put, then read back`, { skip }, async () => {
    const { registry } = await setup()
    const P = prefix()
    assert.equal(await registry.getConfig(P, signal), undefined)
    await registry.putConfig(P, '{"Network":"10.1.0.0/16"}', signal)
    assert.equal(await registry.getConfig(P, signal), '{"Network":"10.1.0.0/16"}')
    assert.equal(await registry.getConfig(`${P}2`, signal), undefined)
  })

  test(`${name}: create attaches a TTL lease; creating again is LEASE_CONFLICT and keeps the first value`, { skip }, async () => {
    const { registry } = await setup()
    const P = prefix()
    const rec = await registry.createSubnet(P, '10.1.1.0-24', 'a', 120, signal)
    assert.notEqual(rec.leaseId, '0')
    assert.equal(rec.ttlSeconds, 120)
    await assert.rejects(registry.createSubnet(P, '10.1.1.0-24', 'b', 120, signal), (err: unknown) => isWeftError(err, 'LEASE_CONFLICT'))
    const got = await registry.getSubnet(P, '10.1.1.0-24', signal)
    assert.equal(got!.value, 'a')
    assert.ok(got!.ttlSeconds! >= 115 && got!.ttlSeconds! <= 120)
    assert.ok(BigInt(got!.storeRevision) >= BigInt(got!.modRevision))
  })

  test(`${name}: create with TTL 0 makes a reservation (no lease), still exclusive`, { skip }, async () => {
    const { registry } = await setup()
    const P = prefix()
    const rec = await registry.createSubnet(P, '10.1.5.0-24', 'r', 0, signal)
    assert.equal(rec.leaseId, '0')
    assert.equal(rec.ttlSeconds, undefined)
    const got = await registry.getSubnet(P, '10.1.5.0-24', signal)
    assert.equal(got!.leaseId, '0')
    assert.equal(got!.ttlSeconds, undefined)
    await assert.rejects(registry.createSubnet(P, '10.1.5.0-24', 'x', 0, signal), (err: unknown) => isWeftError(err, 'LEASE_CONFLICT'))
  })

  test(`${name}: update renews with a new lease, keeps reservations TTL-less, recreates a missing key`, { skip }, async () => {
    const h = await setup()
    const P = prefix()
    const created = await h.registry.createSubnet(P, '10.1.2.0-24', 'a', 60, signal)
    const updated = await h.registry.updateSubnet(P, '10.1.2.0-24', 'a2', 300, signal)
    assert.notEqual(updated.leaseId, created.leaseId)
    assert.ok((await h.registry.getSubnet(P, '10.1.2.0-24', signal))!.ttlSeconds! > 290)
    await h.rawPut(`${P}/subnets/10.1.3.0-24`, 'reserved')
    const kept = await h.registry.updateSubnet(P, '10.1.3.0-24', 'reserved2', 300, signal)
    assert.equal(kept.leaseId, '0')
    const r = await h.registry.getSubnet(P, '10.1.3.0-24', signal)
    assert.equal(r!.value, 'reserved2')
    assert.equal(r!.ttlSeconds, undefined)
    const fresh = await h.registry.updateSubnet(P, '10.1.4.0-24', 'new', 300, signal)
    assert.notEqual(fresh.leaseId, '0')
  })

  test(`${name}: update of a listed key: the granted lease while unchanged, a plain update once changed, a reservation stays one`, { skip }, async () => {
    const h = await setup()
    const P = prefix()
    await h.registry.createSubnet(P, '10.1.6.0-24', 'a', 60, signal)
    await h.rawPut(`${P}/subnets/10.1.7.0-24`, 'reserved')
    const listing = await h.registry.listSubnets(P, signal)
    const entry = (k: string) => listing.entries.find((e) => e.key === k)!
    // Unchanged since the listing: one write with the grant we hold.
    const granted = await h.registry.grantLease(300, signal)
    const reused = await h.registry.updateSubnet(P, '10.1.6.0-24', 'a2', 300, signal, { entry: entry('10.1.6.0-24'), grantedLeaseId: granted })
    assert.equal(reused.leaseId, granted)
    const got = await h.registry.getSubnet(P, '10.1.6.0-24', signal)
    assert.equal(got!.value, 'a2')
    assert.ok(got!.ttlSeconds! > 290)
    // Changed since that listing (our own write above): the plain update, with a lease of its own.
    const other = await h.registry.grantLease(300, signal)
    const plain = await h.registry.updateSubnet(P, '10.1.6.0-24', 'a3', 300, signal, { entry: entry('10.1.6.0-24'), grantedLeaseId: other })
    assert.notEqual(plain.leaseId, other)
    assert.notEqual(plain.leaseId, '0')
    assert.equal((await h.registry.getSubnet(P, '10.1.6.0-24', signal))!.value, 'a3')
    await h.registry.releaseLease(other)
    // A listed reservation keeps no TTL, grant or not.
    const third = await h.registry.grantLease(300, signal)
    const kept = await h.registry.updateSubnet(P, '10.1.7.0-24', 'reserved2', 300, signal, { entry: entry('10.1.7.0-24'), grantedLeaseId: third })
    assert.equal(kept.leaseId, '0')
    const r = await h.registry.getSubnet(P, '10.1.7.0-24', signal)
    assert.equal(r!.value, 'reserved2')
    assert.equal(r!.ttlSeconds, undefined)
    await h.registry.releaseLease(third)
  })

  test(`${name}: replace writes only while the key is as last seen, with a fresh TTL lease (or none)`, { skip }, async () => {
    const h = await setup()
    const P = prefix()
    const K = '10.1.7.0-24'
    await h.rawPut(`${P}/subnets/${K}`, 'theirs')
    const seen = (await h.registry.getSubnet(P, K, signal))!
    const mine = await h.registry.replaceSubnet(P, K, 'ours', 60, seen.modRevision, signal)
    assert.notEqual(mine.leaseId, '0')
    const stored = (await h.registry.getSubnet(P, K, signal))!
    assert.equal(stored.value, 'ours')
    assert.ok(stored.ttlSeconds !== undefined && stored.ttlSeconds > 50)
    // Stale revision, or "absent" while present: LEASE_CONFLICT and the value stays.
    await assert.rejects(h.registry.replaceSubnet(P, K, 'late', 60, seen.modRevision, signal), (err: unknown) => isWeftError(err, 'LEASE_CONFLICT'))
    await assert.rejects(h.registry.replaceSubnet(P, K, 'late', 60, undefined, signal), (err: unknown) => isWeftError(err, 'LEASE_CONFLICT'))
    assert.equal((await h.registry.getSubnet(P, K, signal))!.value, 'ours')
    await h.registry.deleteSubnet(P, K, signal)
    const back = await h.registry.replaceSubnet(P, K, 'reserved', 0, undefined, signal)
    assert.equal(back.leaseId, '0')
    assert.equal((await h.registry.getSubnet(P, K, signal))!.ttlSeconds, undefined)
  })

  test(`${name}: list returns only this prefix's subnets in key order at one revision; delete removes`, { skip }, async () => {
    const h = await setup()
    const P = prefix()
    await h.rawPut(`${P}/config`, '{}')
    await h.rawPut(`${P}/subnets/10.1.9.0-24`, 'x')
    await h.rawPut(`${P}/subnets/10.1.10.0-24`, 'y', 300)
    await h.rawPut(`${P}x/subnets/10.1.11.0-24`, 'other prefix')
    const listing = await h.registry.listSubnets(P, signal)
    assert.deepEqual(listing.entries.map((e) => `${e.key}=${e.value}`), ['10.1.10.0-24=y', '10.1.9.0-24=x'])
    assert.equal(listing.entries[1]!.leaseId, '0')
    assert.notEqual(listing.entries[0]!.leaseId, '0')
    assert.ok(BigInt(listing.revision) >= BigInt(listing.entries[0]!.modRevision))
    await h.registry.deleteSubnet(P, '10.1.9.0-24', signal)
    await h.registry.deleteSubnet(P, 'never-existed', signal)
    assert.deepEqual((await h.registry.listSubnets(P, signal)).entries.map((e) => e.key), ['10.1.10.0-24'])
  })

  test(`${name}: watch replays from a revision, filters by key, and ends on abort`, { skip }, async () => {
    const h = await setup()
    const P = prefix()
    const from = String(BigInt((await h.registry.listSubnets(P, signal)).revision) + 1n)
    await h.rawPut(`${P}/subnets/10.1.20.0-24`, 'v1', 300)
    await h.rawPut(`${P}/subnets/10.1.21.0-24`, 'w1')
    await h.registry.deleteSubnet(P, '10.1.20.0-24', signal)
    const ac = new AbortController()
    const all: RegistryChange[] = []
    for await (const b of h.registry.watchSubnets(P, from, ac.signal)) {
      all.push(...b.changes)
      if (all.length >= 3) break
    }
    assert.deepEqual(all.map((c) => `${c.type} ${c.key} ${c.value ?? ''}`), ['put 10.1.20.0-24 v1', 'put 10.1.21.0-24 w1', 'delete 10.1.20.0-24 '])
    assert.notEqual(all[0]!.leaseId, '0')
    assert.equal(all[1]!.leaseId, '0')
    const one: string[] = []
    for await (const b of h.registry.watchSubnet(P, '10.1.21.0-24', from, ac.signal)) {
      one.push(...b.changes.map((c) => `${c.type} ${c.key}`))
      if (one.length >= 1) break
    }
    assert.deepEqual(one, ['put 10.1.21.0-24'])
    const quiet = (async () => {
      let count = 0
      for await (const b of h.registry.watchSubnets(P, String(BigInt(all[2]!.modRevision) + 1n), ac.signal)) count += b.changes.length
      return count
    })()
    setTimeout(() => ac.abort(), 100)
    assert.equal(await quiet, 0)
  })

  test(`${name}: watching from a compacted revision is REGISTRY_COMPACTED`, { skip }, async () => {
    const h = await setup()
    const P = prefix()
    const from = String(BigInt((await h.registry.listSubnets(P, signal)).revision) + 1n)
    await h.rawPut(`${P}/subnets/10.1.30.0-24`, 'a')
    await h.rawPut(`${P}/subnets/10.1.30.0-24`, 'b')
    await h.compact()
    await assert.rejects(async () => {
      for await (const _ of h.registry.watchSubnets(P, from, signal)) { /* must not deliver */ }
    }, (err: unknown) => isWeftError(err, 'REGISTRY_COMPACTED'))
  })
}
