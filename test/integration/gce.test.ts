/**
 * gce backend end to end: the real @google-cloud/compute SDK (REST transport) and our metadata
 * client against the local GCE emulator on loopback.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GceEmulator } from '../emulators/gce/gce-emulator.ts'
import { FakeSubnetManager, cloudDeps, testNetworkConfig } from '../emulators/gce/fake-subnet-manager.ts'
import { createGceBackend, type GceRuntime } from '../../src/backend/gce/gce.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { systemClock } from '../../src/util/clock.ts'
import { isWeftError } from '../../src/errors.ts'
import { CloudError } from '../../src/backend/cloud/cloud-error.ts'
import { formatIp } from '../../src/ip/ip.ts'

const ROUTE = 'flannel-10-40-12-0-24'
const fast: Omit<GceRuntime, 'env'> = { pollIntervalMs: 5, operationTimeoutMs: 2_000, retryPolicy: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 }, metadataTimeoutMs: 1_000 }

async function withEmulator(fn: (emu: GceEmulator) => Promise<void>, opts = {}): Promise<void> {
  const emu = await GceEmulator.start(opts)
  try {
    await fn(emu)
  } finally {
    await emu.close()
  }
}

function register(emu: GceEmulator, runtime: Partial<GceRuntime> = {}, sm = new FakeSubnetManager(), logger = new MemoryLogger()) {
  const backend = createGceBackend({ computeEndpoint: emu.url }, cloudDeps(sm, logger, systemClock), { env: { GCE_METADATA_HOST: emu.url.replace('http://', '') }, ...fast, ...runtime })
  return backend.registerNetwork(testNetworkConfig('gce'), AbortSignal.timeout(20_000))
}

test('fresh start acquires a gce lease and creates the route through an operation', () =>
  withEmulator(async (emu) => {
    const sm = new FakeSubnetManager()
    const network = await register(emu, {}, sm)
    assert.equal(sm.acquired[0]?.backendType, 'gce')
    assert.equal(formatIp(sm.acquired[0]!.publicIP!), '10.128.0.5')
    assert.equal(network.mtu, 1460)
    const route = emu.routes.get(ROUTE)
    assert.ok(route, 'route created')
    assert.equal(route.destRange, '10.40.12.0/24')
    assert.equal(route.nextHopInstance, emu.instanceLink('node-1'))
    assert.equal(route.network, emu.networkLink('default'))
    assert.equal(route.priority, 1000)
    assert.deepEqual(emu.mutations(), [`POST /compute/v1/projects/weft-test/global/routes`])
    const polls = emu.calls.filter((c) => c.path.includes('/global/operations/'))
    assert.equal(polls.length, 2, 'polled PENDING→RUNNING→DONE')
    // metadata was asked with the header (the emulator 403s otherwise) and compute with the token
    assert.ok(emu.calls.some((c) => c.path === '/computeMetadata/v1/instance/name'))
    const ac = new AbortController()
    const running = network.run(ac.signal)
    ac.abort()
    await running
  }))

test('restart leaves a correct route alone: no delete, no insert', () =>
  withEmulator(async (emu) => {
    await register(emu)
    const before = emu.calls.length
    await register(emu)
    const second = emu.calls.slice(before).filter((c) => c.api === 'compute')
    assert.deepEqual(second.map((c) => c.method), ['GET', 'GET', 'GET'], 'networks.get, instances.get, routes.get only')
    assert.deepEqual(emu.mutations(), [`POST /compute/v1/projects/weft-test/global/routes`])
  }))

test('a route with our name pointing at another instance is deleted and re-created', () =>
  withEmulator(async (emu) => {
    emu.instances.add(`${emu.zone}/node-2`)
    emu.putRoute({ name: ROUTE, destRange: '10.40.12.0/24', network: emu.networkLink('default'), nextHopInstance: emu.instanceLink('node-2'), priority: 1000 })
    const logger = new MemoryLogger()
    await register(emu, {}, new FakeSubnetManager(), logger)
    assert.deepEqual(emu.mutations(), [`DELETE /compute/v1/projects/weft-test/global/routes/${ROUTE}`, 'POST /compute/v1/projects/weft-test/global/routes'])
    assert.equal(emu.routes.get(ROUTE)?.nextHopInstance, emu.instanceLink('node-1'))
    assert.equal(logger.find('replacing route that points elsewhere').length, 1)
  }))

test('route quota reached: plain message with counts, limit and advice, and no insert', () =>
  withEmulator(async (emu) => {
    for (let i = emu.routes.size; i < 100; i++) {
      emu.putRoute({ name: `other-${i}`, destRange: `10.99.${i}.0/24`, network: emu.networkLink('default'), nextHopInstance: emu.instanceLink('node-1'), priority: 1000 })
    }
    await assert.rejects(register(emu), (err: unknown) => {
      assert.ok(isWeftError(err, 'CLOUD_ROUTE_LIMIT'), String(err))
      assert.match((err as Error).message, /project weft-test already holds 100 routes and the gce limit is 100/)
      assert.match((err as Error).message, /10\.40\.12\.0\/24/)
      assert.match((err as Error).message, /quota|vxlan/)
      return true
    })
    assert.deepEqual(emu.mutations(), [])
  }))

test('throttling (429) and 5xx are retried with backoff until the call succeeds', () =>
  withEmulator(async (emu) => {
    emu.failNext('/global/routes/', 429, 'rateLimitExceeded', 'Rate Limit Exceeded', { method: 'GET' })
    emu.failNext('/global/routes/', 503, 'backendError', 'Backend Error', { method: 'GET' })
    emu.failNext('/global/routes', 500, 'backendError', 'Internal Error', { method: 'POST' })
    const logger = new MemoryLogger()
    await register(emu, {}, new FakeSubnetManager(), logger)
    assert.ok(emu.routes.has(ROUTE))
    assert.equal(emu.calls.filter((c) => c.method === 'GET' && c.path.endsWith(`/routes/${ROUTE}`)).length, 3)
    assert.equal(emu.calls.filter((c) => c.method === 'POST').length, 2)
    assert.equal(logger.find('cloud call failed, retrying').length, 3)
  }))

test('persistent throttling gives up with the operation, resource and reason', () =>
  withEmulator(async (emu) => {
    emu.failNext('/global/routes/', 403, 'rateLimitExceeded', 'Rate Limit Exceeded', { method: 'GET', times: 10 })
    await assert.rejects(register(emu), (err: unknown) => {
      assert.ok(err instanceof CloudError)
      assert.equal(err.message, `routes.get ${ROUTE}: rateLimitExceeded Rate Limit Exceeded`)
      assert.equal(err.httpStatus, 403)
      return true
    })
    assert.equal(emu.calls.filter((c) => c.path.endsWith(`/routes/${ROUTE}`)).length, 4)
  }))

test('an unknown instance surfaces as instances.get <zone>/<name>: notFound', () =>
  withEmulator(async (emu) => {
    emu.instances.clear()
    await assert.rejects(register(emu), (err: unknown) => {
      assert.ok(err instanceof CloudError)
      assert.match(err.message, /^instances\.get us-central1-a\/node-1: notFound The resource 'projects\/weft-test\/zones\/us-central1-a\/instances\/node-1' was not found$/)
      assert.equal(err.retryable, false)
      return true
    })
    assert.equal(emu.calls.filter((c) => c.path.includes('/instances/')).length, 1, 'not retried')
  }))

test('a failed operation reports its error code; a stuck one times out with a clear error', () =>
  withEmulator(async (emu) => {
    // Another writer creates the same route between our insert and its completion.
    emu.onCall = (call) => {
      if (!call.path.includes('/global/operations/') || emu.routes.has(ROUTE)) return
      emu.putRoute({ name: ROUTE, destRange: '10.40.12.0/24', network: emu.networkLink('default'), nextHopInstance: emu.instanceLink('node-1'), priority: 1000 })
    }
    await assert.rejects(register(emu), /^CloudError: routes\.insert flannel-10-40-12-0-24: RESOURCE_ALREADY_EXISTS .*\(operation operation-\S+\)$/)
    emu.onCall = undefined
    emu.routes.delete(ROUTE)
    emu.pollsPerStage = 1_000_000
    await assert.rejects(register(emu, { operationTimeoutMs: 50 }), (err: unknown) => {
      assert.ok(isWeftError(err, 'CLOUD_API_FAILED'))
      assert.match((err as Error).message, /^routes\.insert flannel-10-40-12-0-24: operation operation-\S+ still PENDING after 0s/)
      return true
    })
  }))

test('metadata server unreachable gives a clear error naming the endpoint', async () => {
  const emu = await GceEmulator.start()
  const host = emu.url.replace('http://', '')
  await emu.close()
  const backend = createGceBackend({}, cloudDeps(new FakeSubnetManager(), new MemoryLogger(), systemClock), { env: { GCE_METADATA_HOST: host }, ...fast })
  await assert.rejects(backend.registerNetwork(testNetworkConfig('gce'), AbortSignal.timeout(10_000)), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_API_FAILED'))
    assert.match((err as Error).message, new RegExp(`^gce metadata server unreachable at http://${host} \\(.*ECONNREFUSED.*\\); the gce backend must run on a GCE instance, or set GCE_METADATA_HOST`))
    return true
  })
})

test('emulator metadata refuses requests without Metadata-Flavor, compute refuses without a token', () =>
  withEmulator(async (emu) => {
    const md = await fetch(`${emu.url}/computeMetadata/v1/project/project-id`)
    assert.equal(md.status, 403)
    assert.equal(await md.text(), 'Missing required header: Metadata-Flavor')
    const api = await fetch(`${emu.url}/compute/v1/projects/weft-test/global/routes`)
    assert.equal(api.status, 401)
    assert.equal(((await api.json()) as { error: { errors: Array<{ reason: string }> } }).error.errors[0]?.reason, 'required')
  }))

test('through the registry: options parsed, factory loaded lazily, GCE_METADATA_HOST read from the environment', () =>
  withEmulator(async (emu) => {
    const { backendRegistry } = await import('../../src/backend/registry.ts')
    const def = backendRegistry['gce']!
    const options = def.parseOptions({ computeendpoint: emu.url })
    const factory = await def.load()
    const saved = process.env['GCE_METADATA_HOST']
    process.env['GCE_METADATA_HOST'] = emu.url.replace('http://', '')
    try {
      const backend = factory(options, cloudDeps(new FakeSubnetManager(), new MemoryLogger(), systemClock))
      assert.equal(backend.type, 'gce')
      await backend.registerNetwork(testNetworkConfig('gce'), AbortSignal.timeout(20_000))
    } finally {
      if (saved === undefined) delete process.env['GCE_METADATA_HOST']
      else process.env['GCE_METADATA_HOST'] = saved
    }
    assert.ok(emu.routes.has(ROUTE))
  }))

test('emulator checks inserts like the real API: required fields, known network and instance, unique names', () =>
  withEmulator(async (emu) => {
    const post = async (body: object) => {
      const res = await fetch(`${emu.url}/compute/v1/projects/weft-test/global/routes`, { method: 'POST', headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      const json = (await res.json()) as { error?: { errors: Array<{ reason: string }> }; status?: string }
      return [res.status, json.error?.errors[0]?.reason ?? json.status] as const
    }
    const ok = { name: 'r1', destRange: '10.1.0.0/24', network: emu.networkLink('default'), nextHopInstance: emu.instanceLink('node-1') }
    assert.deepEqual(await post({ ...ok, destRange: undefined }), [400, 'required'])
    assert.deepEqual(await post({ ...ok, name: 'Bad_Name' }), [400, 'invalid'])
    assert.deepEqual(await post({ ...ok, network: emu.networkLink('nope') }), [404, 'notFound'])
    assert.deepEqual(await post({ ...ok, nextHopInstance: emu.instanceLink('ghost') }), [404, 'notFound'])
    assert.deepEqual(await post({ ...ok, name: 'default-route-0a1b2c' }), [409, 'alreadyExists'])
    assert.deepEqual(await post(ok), [200, 'PENDING'])
    const other = await fetch(`${emu.url}/compute/v1/projects/someone-else/global/routes/x`, { headers: { authorization: `Bearer ${emu.token}` } })
    assert.equal(other.status, 404)
  }))
