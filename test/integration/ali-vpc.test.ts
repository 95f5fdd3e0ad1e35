/**
 * ali-vpc backend end to end: the real @alicloud/pop-core SDK (signed RPC requests) and our
 * metadata client against the local Alibaba emulator on loopback.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AliEmulator } from '../emulators/ali/ali-emulator.ts'
import { FakeSubnetManager, cloudDeps, testNetworkConfig } from '../emulators/gce/fake-subnet-manager.ts'
import { createAliVpcBackend, type AliVpcRuntime } from '../../src/backend/ali-vpc/ali-vpc.ts'
import type { AliVpcOptions } from '../../src/backend/ali-vpc/ali-vpc-options.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { systemClock } from '../../src/util/clock.ts'
import { isWeftError } from '../../src/errors.ts'
import { CloudError } from '../../src/backend/cloud/cloud-error.ts'

const SUBNET = '10.40.12.0/24'
const fast: Omit<AliVpcRuntime, 'env'> = { pollIntervalMs: 5, availableTimeoutMs: 2_000, retryPolicy: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 20 }, metadataTimeoutMs: 1_000 }

async function withEmulator(fn: (emu: AliEmulator) => Promise<void>): Promise<void> {
  const emu = await AliEmulator.start()
  try {
    await fn(emu)
  } finally {
    await emu.close()
  }
}

function options(emu: AliEmulator, extra: Partial<AliVpcOptions> = {}): AliVpcOptions {
  return { accessKeyID: emu.accessKeyId, accessKeySecret: emu.accessKeySecret, vpcEndpoint: emu.url, metadataEndpoint: emu.url, ...extra }
}

function register(emu: AliEmulator, opts: { options?: AliVpcOptions; runtime?: Partial<AliVpcRuntime>; sm?: FakeSubnetManager; logger?: MemoryLogger } = {}) {
  const backend = createAliVpcBackend(opts.options ?? options(emu), cloudDeps(opts.sm ?? new FakeSubnetManager(), opts.logger ?? new MemoryLogger(), systemClock), { env: {}, ...fast, ...opts.runtime })
  return backend.registerNetwork(testNetworkConfig('ali-vpc'), AbortSignal.timeout(20_000))
}

test('fresh start acquires an ali-vpc lease, creates the entry and waits until Available', () =>
  withEmulator(async (emu) => {
    const sm = new FakeSubnetManager()
    const network = await register(emu, { sm })
    assert.equal(sm.acquired[0]?.backendType, 'ali-vpc')
    assert.equal(network.mtu, 1460)
    assert.deepEqual(emu.custom().map((e) => [e.DestinationCidrBlock, e.InstanceId, e.Status]), [[SUBNET, emu.instanceId, 'Available']])
    assert.deepEqual(emu.mutations(), [`CreateRouteEntry ${SUBNET}`])
    const create = emu.calls.find((c) => c.action === 'CreateRouteEntry')!
    assert.equal(create.params['NextHopType'], 'Instance')
    assert.equal(create.params['RouteTableId'], emu.routeTableId)
    assert.equal(create.params['RegionId'], 'cn-hangzhou')
    assert.equal(create.method, 'POST')
    // discovery chain, then one describe seeing Pending and one seeing Available
    assert.deepEqual(emu.calls.map((c) => c.action), ['DescribeVpcs', 'DescribeVRouters', 'DescribeRouteTables', 'CreateRouteEntry', 'DescribeRouteTables', 'DescribeRouteTables'])
    const ac = new AbortController()
    const running = network.run(ac.signal)
    ac.abort()
    await running
  }))

test('restart leaves a correct entry alone: no delete, no create', () =>
  withEmulator(async (emu) => {
    await register(emu)
    const before = emu.calls.length
    const logger = new MemoryLogger()
    await register(emu, { logger })
    assert.deepEqual(emu.calls.slice(before).map((c) => c.action), ['DescribeVpcs', 'DescribeVRouters', 'DescribeRouteTables'])
    assert.deepEqual(emu.mutations(), [`CreateRouteEntry ${SUBNET}`])
    assert.equal(logger.find('route entry already points at this instance').length, 1)
  }))

test('stale entries of this instance inside the network are removed; others are left alone', () =>
  withEmulator(async (emu) => {
    emu.putEntry('10.40.3.0/24', emu.instanceId) // our old lease: stale
    emu.putEntry('10.40.7.0/24', 'i-bp1node2') // another host's: kept
    emu.putEntry('0.0.0.0/0', emu.instanceId) // default via us (NAT instance): kept
    emu.putEntry('172.16.0.0/24', emu.instanceId) // outside the flannel network: kept
    await register(emu)
    assert.deepEqual(emu.mutations(), ['DeleteRouteEntry 10.40.3.0/24', `CreateRouteEntry ${SUBNET}`])
    assert.deepEqual(emu.custom().map((e) => e.DestinationCidrBlock).sort(), ['0.0.0.0/0', '10.40.12.0/24', '10.40.7.0/24', '172.16.0.0/24'])
  }))

test('an entry for our subnet via another instance is corrected', () =>
  withEmulator(async (emu) => {
    emu.putEntry(SUBNET, 'i-bp1node3')
    await register(emu)
    assert.deepEqual(emu.mutations(), [`DeleteRouteEntry ${SUBNET}`, `CreateRouteEntry ${SUBNET}`])
    assert.equal(emu.calls.find((c) => c.action === 'DeleteRouteEntry')?.params['NextHopId'], 'i-bp1node3')
    assert.deepEqual(emu.custom().map((e) => [e.DestinationCidrBlock, e.InstanceId]), [[SUBNET, emu.instanceId]])
  }))

test('table full: plain message with counts, limit and advice, and no create', () =>
  withEmulator(async (emu) => {
    for (let i = 0; i < 50; i++) emu.putEntry(`10.41.${i}.0/24`, 'i-bp1node2')
    await assert.rejects(register(emu), (err: unknown) => {
      assert.ok(isWeftError(err, 'CLOUD_ROUTE_LIMIT'), String(err))
      assert.equal((err as Error).message,
        `route table ${emu.routeTableId} already holds 50 routes and the alibaba limit is 50: cannot add the route for ${SUBNET}; ask Alibaba Cloud to raise the custom route entry quota of the table, or use the vxlan backend for clusters this size`)
      return true
    })
    assert.deepEqual(emu.mutations(), [])
  }))

test('a stale entry frees room: 50 entries, one stale, still fits', () =>
  withEmulator(async (emu) => {
    for (let i = 0; i < 49; i++) emu.putEntry(`10.41.${i}.0/24`, 'i-bp1node2')
    emu.putEntry('10.40.3.0/24', emu.instanceId)
    await register(emu)
    assert.deepEqual(emu.mutations(), ['DeleteRouteEntry 10.40.3.0/24', `CreateRouteEntry ${SUBNET}`])
    // 52 entries (2 System + 50 Custom) span two pages of 50: both were read
    assert.deepEqual(emu.calls.filter((c) => c.action === 'DescribeRouteTables').slice(0, 2).map((c) => c.params['PageNumber']), ['1', '2'])
  }))

test('Throttling and 5xx are retried with backoff until the call succeeds', () =>
  withEmulator(async (emu) => {
    emu.failNext('DescribeVpcs', 400, 'Throttling.User', 'Request was denied due to user flow control.')
    emu.failNext('DescribeRouteTables', 503, 'ServiceUnavailable', 'The request has failed due to a temporary failure of the server.')
    emu.failNext('CreateRouteEntry', 400, 'Throttling', 'Request was denied due to request throttling.', 2)
    const logger = new MemoryLogger()
    await register(emu, { logger })
    assert.equal(emu.custom().length, 1)
    assert.equal(emu.calls.filter((c) => c.action === 'CreateRouteEntry').length, 3)
    assert.equal(logger.find('cloud call failed, retrying').length, 4)
  }))

test('API errors name the action, the resource, Alibaba code and RequestId, without secrets', () =>
  withEmulator(async (emu) => {
    const vpcless = await AliEmulator.start()
    try {
      // metadata says a VPC the API does not know
      Object.defineProperty(vpcless, 'vpcId', { value: 'vpc-gone' })
      await assert.rejects(register(emu, { options: options(emu, { metadataEndpoint: vpcless.url }) }), (err: unknown) => {
        assert.ok(err instanceof CloudError)
        assert.match(err.message, /^DescribeVpcs vpc-gone: InvalidVpcId\.NotFound Specified VPC can not found\. \(RequestId [0-9A-F-]{36}\)$/)
        assert.equal(err.httpStatus, 404)
        assert.equal(err.retryable, false)
        return true
      })
    } finally {
      await vpcless.close()
    }
    await assert.rejects(register(emu, { options: options(emu, { accessKeySecret: 'wrong-secret' }) }), (err: unknown) => {
      assert.ok(isWeftError(err, 'CLOUD_CREDENTIALS'))
      assert.match((err as Error).message, /^DescribeVpcs vpc-bp1weft0emulator: SignatureDoesNotMatch /)
      assert.doesNotMatch((err as Error).message, /wrong-secret|LTAI5t|Signature=/)
      return true
    })
  }))

test('missing credentials: clear error before any lease or API call; env fallback works', () =>
  withEmulator(async (emu) => {
    const sm = new FakeSubnetManager()
    const noKeys = { vpcEndpoint: emu.url, metadataEndpoint: emu.url }
    await assert.rejects(register(emu, { options: noKeys, sm }), (err: unknown) => {
      assert.ok(isWeftError(err, 'CLOUD_CREDENTIALS'))
      assert.equal((err as Error).message, 'alibaba credentials are not set; set Backend.AccessKeyID and Backend.AccessKeySecret in the network config, or ACCESS_KEY_ID and ACCESS_KEY_SECRET in the environment')
      return true
    })
    assert.equal(sm.acquired.length, 0)
    assert.equal(emu.calls.length, 0)
    await register(emu, { options: noKeys, runtime: { env: { ACCESS_KEY_ID: emu.accessKeyId, ACCESS_KEY_SECRET: emu.accessKeySecret } } })
    assert.equal(emu.custom().length, 1)
  }))

test('metadata service unreachable gives a clear error naming the endpoint', async () => {
  const emu = await AliEmulator.start()
  const url = emu.url
  await emu.close()
  await assert.rejects(register(emu, { options: options(emu, { metadataEndpoint: url }) }), /^WeftError: alibaba metadata service unreachable at http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\); the ali-vpc backend must run on an ECS instance/)
})

test('an entry that never becomes Available times out with its status', () =>
  withEmulator(async (emu) => {
    emu.pendingPolls = 1_000_000
    await assert.rejects(register(emu, { runtime: { availableTimeoutMs: 40 } }), /CreateRouteEntry vtb-bp1weft0emulator 10\.40\.12\.0\/24: entry is Pending after 0s, expected Available/)
  }))

test('emulator rejects unsigned, tampered and replayed requests with real codes', () =>
  withEmulator(async (emu) => {
    const unsigned = await fetch(`${emu.url}/?Action=DescribeVpcs&RegionId=cn-hangzhou&Format=JSON&Version=2016-04-28`)
    assert.equal(unsigned.status, 400)
    assert.equal(((await unsigned.json()) as { Code: string }).Code, 'MissingAccessKeyId')
    await register(emu)
    const signed = emu.calls.find((c) => c.action === 'DescribeVpcs' && c.params['Signature'] !== undefined)!
    const replay = await fetch(`${emu.url}/`, { method: 'POST', body: new URLSearchParams(signed.params) })
    assert.equal(((await replay.json()) as { Code: string }).Code, 'SignatureNonceUsed')
    const tampered = await fetch(`${emu.url}/`, { method: 'POST', body: new URLSearchParams({ ...signed.params, VpcId: 'vpc-other', SignatureNonce: 'n2' }) })
    const body = (await tampered.json()) as { Code: string; RequestId: string }
    assert.equal(body.Code, 'SignatureDoesNotMatch')
    assert.match(body.RequestId, /^[0-9A-F-]{36}$/)
  }))

test('through the registry: options parsed, factory loaded lazily, ACCESS_KEY_* read from the environment', () =>
  withEmulator(async (emu) => {
    const { backendRegistry } = await import('../../src/backend/registry.ts')
    const def = backendRegistry['ali-vpc']!
    const parsed = def.parseOptions({ vpcendpoint: emu.url, metadataendpoint: emu.url })
    const factory = await def.load()
    const saved = [process.env['ACCESS_KEY_ID'], process.env['ACCESS_KEY_SECRET']]
    process.env['ACCESS_KEY_ID'] = emu.accessKeyId
    process.env['ACCESS_KEY_SECRET'] = emu.accessKeySecret
    try {
      const backend = factory(parsed, cloudDeps(new FakeSubnetManager(), new MemoryLogger(), systemClock))
      assert.equal(backend.type, 'ali-vpc')
      await backend.registerNetwork(testNetworkConfig('ali-vpc'), AbortSignal.timeout(20_000))
    } finally {
      for (const [k, v] of [['ACCESS_KEY_ID', saved[0]], ['ACCESS_KEY_SECRET', saved[1]]] as const) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
    }
    assert.deepEqual(emu.custom().map((e) => e.DestinationCidrBlock), [SUBNET])
  }))
