/** ali-vpc backend logic against an in-memory VPC API and a FakeClock (no network). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createAliVpcBackend } from '../../../../src/backend/ali-vpc/ali-vpc.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { FakeSubnetManager, cloudDeps, testNetworkConfig } from '../../../emulators/gce/fake-subnet-manager.ts'
import { MemoryVpcRoutesApi } from './memory-vpc-routes-api.ts'

const SUBNET = '10.40.12.0/24'

function setup(api: MemoryVpcRoutesApi) {
  const clock = new FakeClock()
  const backend = createAliVpcBackend({ accessKeyID: 'id', accessKeySecret: 'secret' }, cloudDeps(new FakeSubnetManager(), new MemoryLogger(), clock), {
    env: {},
    metadata: { self: async () => ({ regionId: 'cn-hangzhou', instanceId: 'i-me', vpcId: 'vpc-1' }) },
    createApi: async (config) => {
      assert.deepEqual(config.credentials, { accessKeyId: 'id', accessKeySecret: 'secret' })
      return api
    },
  })
  return { clock, register: () => backend.registerNetwork(testNetworkConfig('ali-vpc'), new AbortController().signal) }
}

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

test('create, then describe every second until Available', async () => {
  const api = new MemoryVpcRoutesApi()
  api.pendingDescribes = 3
  const { register, clock } = setup(api)
  const start = clock.now()
  await drive(register(), clock, 1_000)
  assert.deepEqual(api.calls, ['describeVpc', 'describeVRouter', 'describeRouteTable', `create ${SUBNET}`, 'describeRouteTable', 'describeRouteTable', 'describeRouteTable', 'describeRouteTable'])
  assert.equal(clock.now() - start, 3_000)
})

test('an entry still Pending after 60 s fails with its status', async () => {
  const api = new MemoryVpcRoutesApi()
  api.pendingDescribes = Infinity
  const { register, clock } = setup(api)
  const start = clock.now()
  await assert.rejects(drive(register(), clock, 1_000), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_API_FAILED'))
    assert.equal((err as Error).message, `CreateRouteEntry vtb-1 ${SUBNET}: entry is Pending after 60s, expected Available`)
    return true
  })
  assert.equal(clock.now() - start, 60_000)
})

test('an existing Pending entry of ours is waited for, not re-created', async () => {
  const api = new MemoryVpcRoutesApi()
  api.put(SUBNET, 'i-me', 'Pending')
  const { register, clock } = setup(api)
  await drive(register(), clock, 1_000)
  assert.deepEqual(api.calls.filter((c) => c.startsWith('create') || c.startsWith('delete')), [])
  assert.equal(api.entries[0]?.status, 'Available')
})
