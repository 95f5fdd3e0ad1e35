/** gce backend logic against an in-memory Compute API and a FakeClock (no network). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createGceBackend } from '../../../../src/backend/gce/gce.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { FakeSubnetManager, cloudDeps, testNetworkConfig } from '../../../emulators/gce/fake-subnet-manager.ts'
import { LINKS, MemoryComputeRoutesApi, SELF } from './memory-compute-routes-api.ts'

const ROUTE = 'flannel-10-40-12-0-24'

function setup(api: MemoryComputeRoutesApi, clock = new FakeClock()) {
  const logger = new MemoryLogger()
  const backend = createGceBackend({}, cloudDeps(new FakeSubnetManager(), logger, clock), {
    env: {},
    metadata: { self: async () => SELF, token: async () => ({ accessToken: 't', expiresAt: Infinity }) },
    createApi: async () => api,
  })
  return { backend, clock, logger, register: () => backend.registerNetwork(testNetworkConfig('gce'), new AbortController().signal) }
}

/** Advances the fake clock in `step` ms increments until `p` settles. */
async function drive<T>(p: Promise<T>, clock: FakeClock, step: number): Promise<T> {
  let settled = false
  const watched = p.finally(() => { settled = true })
  watched.catch(() => {})
  for (let i = 0; i < 10_000 && !settled; i++) {
    await new Promise((r) => setImmediate(r))
    if (clock.pending > 0) await clock.advance(step)
  }
  return watched
}

test('create polls the operation once a second until DONE', async () => {
  const api = new MemoryComputeRoutesApi()
  const { register, clock } = setup(api)
  const start = clock.now()
  await drive(register(), clock, 1_000)
  assert.deepEqual(api.calls, ['resolveSelfLinks', `getRoute ${ROUTE}`, 'listRoutes', `insertRoute ${ROUTE}`, 'poll op-1', 'poll op-1'])
  assert.equal(clock.now() - start, 1_000)
  assert.deepEqual(api.routes.get(ROUTE), { name: ROUTE, destRange: '10.40.12.0/24', network: LINKS.networkSelfLink, nextHopInstance: LINKS.instanceSelfLink, priority: 1000 })
})

test('an operation that never finishes fails after 100 s with its name and status', async () => {
  const api = new MemoryComputeRoutesApi()
  api.pollsToDone = Infinity
  const { register, clock } = setup(api)
  const start = clock.now()
  await assert.rejects(drive(register(), clock, 1_000), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_API_FAILED'))
    assert.equal((err as Error).message, `routes.insert ${ROUTE}: operation op-1 still RUNNING after 100s; check the operation in the GCE console and restart`)
    return true
  })
  assert.equal(clock.now() - start, 100_000)
  assert.equal(api.calls.filter((c) => c.startsWith('poll')).length, 101)
})

test('replace waits for the delete before inserting', async () => {
  const api = new MemoryComputeRoutesApi()
  api.routes.set(ROUTE, { name: ROUTE, destRange: '10.40.12.0/24', network: LINKS.networkSelfLink, nextHopInstance: 'projects/p/zones/z/instances/old', priority: 1000 })
  const { register, clock } = setup(api)
  await drive(register(), clock, 1_000)
  assert.deepEqual(api.calls.slice(2), [`deleteRoute ${ROUTE}`, 'poll op-1', 'poll op-1', `insertRoute ${ROUTE}`, 'poll op-2', 'poll op-2'])
  assert.equal(api.routes.get(ROUTE)?.nextHopInstance, LINKS.instanceSelfLink)
})

test('quota: 99 routes fit with a warning, 100 do not', async () => {
  const api = new MemoryComputeRoutesApi()
  for (let i = 0; i < 98; i++) api.routes.set(`r${i}`, { name: `r${i}`, destRange: `10.9.${i}.0/24`, network: '', nextHopInstance: '', priority: 1000 })
  const first = setup(api)
  await drive(first.register(), first.clock, 1_000)
  assert.equal(first.logger.find('project is close to its route quota').length, 1)
  api.routes.delete(ROUTE)
  api.routes.set('r98', { name: 'r98', destRange: '10.9.98.0/24', network: '', nextHopInstance: '', priority: 1000 })
  api.routes.set('r99', { name: 'r99', destRange: '10.9.99.0/24', network: '', nextHopInstance: '', priority: 1000 })
  const second = setup(api)
  await assert.rejects(drive(second.register(), second.clock, 1_000), (err: unknown) => isWeftError(err, 'CLOUD_ROUTE_LIMIT'))
  assert.equal(api.routes.has(ROUTE), false)
})
