import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryRegistry } from '../../../../src/subnet/etcd/memory-registry.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { registryContract } from './registry-contract.ts'

registryContract('MemoryRegistry', async () => {
  const registry = new MemoryRegistry({ clock: new FakeClock() })
  return {
    registry,
    rawPut: async (key, value, ttl) => registry.rawPut(key, value, ttl),
    compact: async () => registry.compact(),
  }
})

const P = '/coreos.com/network'
const signal = new AbortController().signal

test('MemoryRegistry: keys expire with their lease on the injected clock; reservations never do', async () => {
  const clock = new FakeClock()
  const r = new MemoryRegistry({ clock })
  await r.createSubnet(P, '10.1.1.0-24', 'a', 10, signal)
  r.rawPut(`${P}/subnets/10.1.2.0-24`, 'reserved')
  await clock.advance(9_999)
  assert.equal((await r.getSubnet(P, '10.1.1.0-24', signal))!.ttlSeconds, 1)
  await clock.advance(1)
  assert.equal(await r.getSubnet(P, '10.1.1.0-24', signal), undefined)
  await clock.advance(10 ** 9)
  assert.equal((await r.getSubnet(P, '10.1.2.0-24', signal))!.value, 'reserved')
})

test('MemoryRegistry: an update moves the key to a new lease, so the old lease expiring does not delete it', async () => {
  const clock = new FakeClock()
  const r = new MemoryRegistry({ clock })
  await r.createSubnet(P, '10.1.1.0-24', 'a', 10, signal)
  await clock.advance(5_000)
  await r.updateSubnet(P, '10.1.1.0-24', 'a', 10, signal)
  await clock.advance(6_000)
  assert.equal((await r.getSubnet(P, '10.1.1.0-24', signal))!.ttlSeconds, 4)
})

test('MemoryRegistry: unavailable and disconnected watches fail with REGISTRY_UNAVAILABLE', async () => {
  const r = new MemoryRegistry({ clock: new FakeClock() })
  const it = r.watchSubnets(P, '1', signal)[Symbol.asyncIterator]()
  const pending = it.next()
  r.disconnectWatches()
  await assert.rejects(pending, (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE'))
  r.unavailable = true
  await assert.rejects(r.getConfig(P, signal), (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE'))
})
