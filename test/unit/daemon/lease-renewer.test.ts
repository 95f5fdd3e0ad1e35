import { test } from 'node:test'
import assert from 'node:assert/strict'
import { keepLease } from '../../../src/daemon/lease-renewer.ts'
import { FakeClock } from '../../../src/util/clock.ts'
import { MemoryLogger } from '../../../src/log/logger.ts'
import { isWeftError } from '../../../src/errors.ts'
import { parseCidr, parseIp } from '../../../src/ip/ip.ts'
import type { Lease, LeaseWatchResult } from '../../../src/lease/lease.ts'
import type { SubnetManager } from '../../../src/subnet/subnet-manager.ts'
import { until as waitUntil } from '../../helpers/wait.ts'

const HOUR = 3_600_000

/** A subnet manager whose own-lease watch is fed by the test. */
function fakeManager(clock: FakeClock, failRenewals = 0) {
  const renewals: number[] = []
  let push: ((r: LeaseWatchResult) => void) | undefined
  const queue: LeaseWatchResult[] = []
  const manager: SubnetManager = {
    name: 'fake',
    getNetworkConfig: () => Promise.reject(new Error('unused')),
    acquireLease: () => Promise.reject(new Error('unused')),
    async renewLease(lease) {
      renewals.push(clock.now())
      if (failRenewals-- > 0) throw new Error('etcd unavailable')
      return { ...lease, expiration: clock.now() + 24 * HOUR }
    },
    listLeases: () => Promise.reject(new Error('unused')),
    watchLeases: () => { throw new Error('unused') },
    async *watchLease(_own, signal) {
      while (!signal.aborted) {
        const next = queue.shift() ?? (await new Promise<LeaseWatchResult>((resolve, reject) => {
          push = resolve
          signal.addEventListener('abort', () => reject(signal.reason), { once: true })
        }))
        yield next
      }
    },
    close: async () => {},
  }
  return { manager, renewals, emit: (r: LeaseWatchResult) => (push ? (push(r), (push = undefined)) : queue.push(r)) }
}

function lease(clock: FakeClock): Lease {
  return { subnet: parseCidr('10.5.3.0/24'), attrs: { publicIP: parseIp('192.168.1.2'), backendType: 'vxlan' }, expiration: clock.now() + 24 * HOUR }
}

/** FakeClock tests: re-check every event-loop turn so parked sleeps and watches can run. */
const until = (cond: () => boolean): Promise<void> => waitUntil(cond, { timeoutMs: 2000, everyMs: 0 })

test('renews at expiration minus the margin, then again a day later', async () => {
  const clock = new FakeClock()
  const start = clock.now()
  const { manager, renewals } = fakeManager(clock)
  const ac = new AbortController()
  const running = keepLease({ subnetManager: manager, lease: lease(clock), renewMarginMinutes: 60, logger: new MemoryLogger(), clock }, ac.signal)
  await until(() => clock.pending > 0)
  await clock.advance(23 * HOUR - 1)
  assert.deepEqual(renewals, [])
  await clock.advance(1)
  await until(() => renewals.length === 1)
  assert.equal(renewals[0], start + 23 * HOUR)
  await clock.advance(24 * HOUR)
  await until(() => renewals.length === 2)
  ac.abort()
  await assert.rejects(running)
})

test('a failed renewal is retried after the retry delay', async () => {
  const clock = new FakeClock()
  const { manager, renewals } = fakeManager(clock, 1)
  const logger = new MemoryLogger()
  const ac = new AbortController()
  const running = keepLease({ subnetManager: manager, lease: lease(clock), renewMarginMinutes: 60, logger, clock, retryMs: 60_000 }, ac.signal)
  await until(() => clock.pending > 0)
  await clock.advance(23 * HOUR)
  await until(() => renewals.length === 1)
  await until(() => clock.pending > 0)
  await clock.advance(60_000)
  await until(() => renewals.length === 2)
  assert.equal(logger.find('lease renewal failed; retrying').length, 1)
  ac.abort()
  await assert.rejects(running)
})

test('removal of the own lease rejects with LEASE_REVOKED', async () => {
  const clock = new FakeClock()
  const { manager, emit } = fakeManager(clock)
  const own = lease(clock)
  const running = keepLease({ subnetManager: manager, lease: own, renewMarginMinutes: 60, logger: new MemoryLogger(), clock }, new AbortController().signal)
  emit({ kind: 'events', events: [{ type: 'removed', lease: own }] })
  await assert.rejects(running, (err) => isWeftError(err, 'LEASE_REVOKED'))
})

test('an update from the own-lease watch moves the renewal deadline', async () => {
  const clock = new FakeClock()
  const start = clock.now()
  const { manager, renewals, emit } = fakeManager(clock)
  const own = lease(clock)
  const ac = new AbortController()
  const running = keepLease({ subnetManager: manager, lease: own, renewMarginMinutes: 60, logger: new MemoryLogger(), clock }, ac.signal)
  await until(() => clock.pending > 0)
  emit({ kind: 'events', events: [{ type: 'added', lease: { ...own, expiration: start + 48 * HOUR } }] })
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)) // let the watch deliver it
  await clock.advance(23 * HOUR)
  await until(() => clock.pending > 0)
  assert.deepEqual(renewals, [], 'the old deadline no longer triggers a renewal')
  await clock.advance(24 * HOUR)
  await until(() => renewals.length === 1)
  assert.equal(renewals[0], start + 47 * HOUR)
  ac.abort()
  await assert.rejects(running)
})
