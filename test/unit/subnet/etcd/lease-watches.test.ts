import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EtcdSubnetManager } from '../../../../src/subnet/etcd/etcd-subnet-manager.ts'
import { MemoryRegistry } from '../../../../src/subnet/etcd/memory-registry.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { formatCidr, formatIp } from '../../../../src/ip/ip.ts'
import type { LeaseWatchResult } from '../../../../src/lease/lease.ts'
import { ip, testParseConfig, until } from './fixtures.ts'

const P = '/coreos.com/network'
const value = (pub: string): string => `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"vxlan"}`

async function setup() {
  const clock = new FakeClock()
  const registry = new MemoryRegistry({ clock })
  const logger = new MemoryLogger()
  registry.rawPut(`${P}/config`, '{"Network":"10.3.0.0/16"}')
  registry.rawPut(`${P}/subnets/10.3.1.0-24`, value('1.1.1.1'), 86400)
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger, clock, parseConfig: testParseConfig, random: () => 0.5 })
  const ac = new AbortController()
  const own = await sm.acquireLease(await sm.getNetworkConfig(ac.signal), { publicIP: ip('5.5.5.5'), backendType: 'vxlan' }, ac.signal)
  return { clock, registry, logger, sm, ac, own }
}

/** Pulls results from an async iterator one at a time. */
function reader(iterable: AsyncIterable<LeaseWatchResult>) {
  const it = iterable[Symbol.asyncIterator]()
  return async (): Promise<LeaseWatchResult> => {
    const r = await it.next()
    if (r.done) throw new Error('watch ended')
    return r.value
  }
}

const describe = (r: LeaseWatchResult): string[] =>
  r.kind === 'snapshot'
    ? r.leases.map((l) => `snapshot ${formatCidr(l.subnet!)}`)
    : r.events.map((e) => `${e.type} ${formatCidr(e.lease.subnet!)} ${e.lease.attrs.publicIP ? formatIp(e.lease.attrs.publicIP) : '-'}`)

test('watchLeases: snapshot without our own lease, then added / renewed / removed with stored attrs', async () => {
  const { registry, sm, ac, own } = await setup()
  const next = reader(sm.watchLeases(own, ac.signal))
  assert.deepEqual(describe(await next()), ['snapshot 10.3.1.0/24'])
  registry.rawPut(`${P}/subnets/10.3.7.0-24`, value('7.7.7.7'), 86400)
  assert.deepEqual(describe(await next()), ['added 10.3.7.0/24 7.7.7.7'])
  registry.rawPut(`${P}/subnets/10.3.7.0-24`, value('7.7.7.7'), 86400)
  assert.deepEqual(describe(await next()), ['added 10.3.7.0/24 7.7.7.7'])
  // a renewal of our own lease is not reported
  await sm.renewLease(own, ac.signal)
  registry.rawDelete(`${P}/subnets/10.3.7.0-24`)
  assert.deepEqual(describe(await next()), ['removed 10.3.7.0/24 7.7.7.7'])
  ac.abort()
})

test('watchLeases: a 3 s lease is added then removed when it expires', async () => {
  const { registry, sm, ac, own, clock } = await setup()
  const next = reader(sm.watchLeases(own, ac.signal))
  await next()
  registry.rawPut(`${P}/subnets/10.3.8.0-24`, value('8.8.8.8'), 3)
  assert.deepEqual(describe(await next()), ['added 10.3.8.0/24 8.8.8.8'])
  const pending = next()
  await until(() => clock.pending > 0)
  await clock.advance(3000)
  assert.deepEqual(describe(await pending), ['removed 10.3.8.0/24 8.8.8.8'])
  ac.abort()
})

test('watchLeases: garbage keys and values are skipped and logged once', async () => {
  const { registry, sm, ac, own, logger } = await setup()
  registry.rawPut(`${P}/subnets/junk`, 'x')
  registry.rawPut(`${P}/subnets/10.3.9.0-24`, '{"PublicIP":12}')
  const next = reader(sm.watchLeases(own, ac.signal))
  assert.deepEqual(describe(await next()), ['snapshot 10.3.1.0/24'])
  registry.rawPut(`${P}/subnets/also-junk`, 'y')
  registry.rawPut(`${P}/subnets/10.3.10.0-24`, 'not json')
  registry.rawPut(`${P}/subnets/10.3.11.0-24`, value('11.11.11.11'))
  assert.deepEqual(describe(await next()), ['added 10.3.11.0/24 11.11.11.11'])
  const warned = logger.find('skipping malformed subnet key').map((e) => e.fields['key']).sort()
  assert.deepEqual(warned, ['10.3.10.0-24', '10.3.9.0-24', 'also-junk', 'junk'])
  ac.abort()
})

test('watchLeases: compaction while disconnected re-lists as a snapshot with the changes', async () => {
  const { registry, sm, ac, own, clock, logger } = await setup()
  const next = reader(sm.watchLeases(own, ac.signal))
  await next()
  const pending = next()
  await until(() => registry.calls['watch'] === 1) // our watch is parked
  registry.disconnectWatches()
  await until(() => logger.find('lease watch failed; reconnecting').length === 1) // backing off
  registry.rawPut(`${P}/subnets/10.3.12.0-24`, value('12.12.12.12'), 86400)
  registry.rawDelete(`${P}/subnets/10.3.1.0-24`)
  registry.compact()
  await clock.advance(100)
  assert.deepEqual(describe(await pending), ['snapshot 10.3.12.0/24'])
  assert.equal(logger.find('watch revision compacted; re-listing leases').length, 1)
  assert.equal(logger.find('lease watch failed; reconnecting').length, 1)
  ac.abort()
})

test('watchLeases: reconnect resumes from the next revision and backs off 100 ms → 5 s', async () => {
  const { registry, sm, ac, own, clock, logger } = await setup()
  const next = reader(sm.watchLeases(own, ac.signal))
  await next()
  registry.unavailable = true
  registry.disconnectWatches()
  const pending = next()
  for (const ms of [100, 200, 400, 800, 1600, 3200, 5000, 5000]) {
    await until(() => clock.pending > 0)
    await clock.advance(ms)
  }
  registry.unavailable = false
  registry.rawPut(`${P}/subnets/10.3.13.0-24`, value('13.13.13.13'), 86400)
  await until(() => clock.pending > 0)
  await clock.advance(5000)
  assert.deepEqual(describe(await pending), ['added 10.3.13.0/24 13.13.13.13'])
  const delays = logger.find('lease watch failed; reconnecting').map((e) => e.fields['retryInMs'])
  assert.deepEqual(delays.slice(0, 9), [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000])
  ac.abort()
})

test('watchLeases ends when the signal aborts', async () => {
  const { sm, ac, own } = await setup()
  const it = sm.watchLeases(own, ac.signal)[Symbol.asyncIterator]()
  await it.next()
  const pending = it.next()
  ac.abort()
  assert.equal((await pending).done, true)
})

test('watchLease: own lease snapshot, added with new expiration on renew, removed on delete', async () => {
  const { registry, sm, ac, own, clock } = await setup()
  const next = reader(sm.watchLease(own, ac.signal))
  const first = await next()
  assert.equal(first.kind, 'snapshot')
  assert.equal(first.kind === 'snapshot' ? first.leases[0]!.expiration : -1, own.expiration)
  await clock.advance(60_000)
  const renewed = await sm.renewLease(own, ac.signal)
  const r = await next()
  assert.equal(r.kind, 'events')
  if (r.kind === 'events') {
    assert.equal(r.events[0]!.type, 'added')
    assert.equal(r.events[0]!.lease.expiration, renewed.expiration)
    assert.equal(renewed.expiration, own.expiration! + 60_000)
  }
  registry.rawDelete(`${P}/subnets/${formatCidr(own.subnet!).replace('/', '-')}`)
  const removed = await next()
  assert.deepEqual(removed.kind === 'events' ? removed.events.map((e) => e.type) : [], ['removed'])
  ac.abort()
})

test('watchLease: expiry of our own key is reported as removed', async () => {
  const { sm, ac, own, clock } = await setup()
  const next = reader(sm.watchLease(own, ac.signal))
  await next()
  const pending = next()
  await until(() => clock.pending > 0)
  await clock.advance(86_400_000)
  const r = await pending
  assert.deepEqual(r.kind === 'events' ? r.events.map((e) => e.type) : [], ['removed'])
  ac.abort()
})

test('watchLease: key deleted during compaction yields an empty snapshot', async () => {
  const { registry, sm, ac, own, clock, logger } = await setup()
  const next = reader(sm.watchLease(own, ac.signal))
  await next()
  const pending = next()
  await until(() => registry.calls['watch'] === 1)
  registry.disconnectWatches()
  await until(() => logger.find('own lease watch failed; reconnecting').length === 1)
  registry.rawDelete(`${P}/subnets/${formatCidr(own.subnet!).replace('/', '-')}`)
  registry.compact()
  await clock.advance(100)
  const r = await pending
  assert.deepEqual(r, { kind: 'snapshot', leases: [] })
  ac.abort()
})

test('watchLeases: the raw listing behind a snapshot is not kept alive while the watch runs', async () => {
  const { registry, sm, ac, own } = await setup()
  const list = registry.listSubnets.bind(registry)
  let listed: WeakRef<object> | undefined
  registry.listSubnets = async (...args) => {
    const listing = await list(...args)
    listed = new WeakRef(listing)
    return listing
  }
  const next = reader(sm.watchLeases(own, ac.signal))
  assert.deepEqual(describe(await next()), ['snapshot 10.3.1.0/24'])
  // The watch is now suspended after its snapshot; a generator keeps every local it held.
  await new Promise((resolve) => setImmediate(resolve))
  const { setFlagsFromString } = await import('node:v8')
  setFlagsFromString('--expose-gc')
  const gc = (await import('node:vm')).runInNewContext('gc') as () => void
  gc()
  assert.ok(listed, 'the watch listed the leases')
  assert.equal(listed.deref(), undefined, 'the listing was collected')
  ac.abort()
})
