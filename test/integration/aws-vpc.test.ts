/**
 * aws-vpc end to end: the backend, the real AWS SDK v3 EC2 client and the IMDS client against
 * the local EC2 + IMDS emulator (loopback, port 0). Endpoints come from the SDKs' own
 * variables: AWS_ENDPOINT_URL_EC2 and AWS_EC2_METADATA_SERVICE_ENDPOINT.
 */
import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { awsVpc } from '../../src/backend/aws-vpc/aws-vpc.ts'
import { parseAwsVpcOptions } from '../../src/backend/aws-vpc/aws-vpc-options.ts'
import { backendRegistry } from '../../src/backend/registry.ts'
import type { Backend, BackendDeps } from '../../src/backend/backend.ts'
import type { NetworkConfig } from '../../src/config/network-config.ts'
import type { Kernel } from '../../src/kernel/kernel.ts'
import type { LeaseAttrs } from '../../src/lease/lease.ts'
import type { SubnetManager } from '../../src/subnet/subnet-manager.ts'
import { isWeftError } from '../../src/errors.ts'
import { parseCidr, parseIp } from '../../src/ip/ip.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { systemClock } from '../../src/util/clock.ts'
import { INTERNAL, THROTTLE, UNAVAILABLE, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, startEc2Emulator } from '../emulators/ec2/ec2-emulator.ts'
import type { Ec2Emulator } from '../emulators/ec2/ec2-emulator.ts'
import type { EmuInstance, EmuRouteTable } from '../emulators/ec2/ec2-state.ts'

const SUBNET = '10.244.3.0/24'
const config: NetworkConfig = {
  enableIPv4: true,
  enableIPv6: false,
  enableNFTables: false,
  ipv4: { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: parseIp('10.244.1.0')!, subnetMax: parseIp('10.244.255.0')! },
  backend: { type: 'aws-vpc', options: {} },
}
const FAST = { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 80 }

interface World {
  emu: Ec2Emulator
  me: EmuInstance
  other: EmuInstance
  subnetId: string
  table: EmuRouteTable
  main: EmuRouteTable
  logger: MemoryLogger
  acquired: LeaseAttrs[]
  deps: BackendDeps
}

const open: Ec2Emulator[] = []
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close()
})

/** Points the SDK and IMDS at the emulator; credentials from the environment unless told otherwise. */
function setEnv(emu: Ec2Emulator, credentials: { id: string; secret: string } | undefined): void {
  for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) delete process.env[key]
  process.env.AWS_ENDPOINT_URL_EC2 = emu.url
  process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = emu.url
  process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/weft-test/credentials'
  process.env.AWS_CONFIG_FILE = '/nonexistent/weft-test/config'
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
  if (credentials) {
    process.env.AWS_ACCESS_KEY_ID = credentials.id
    process.env.AWS_SECRET_ACCESS_KEY = credentials.secret
  }
}

async function world(options: { subnetTable?: boolean; mainTable?: boolean; credentials?: boolean } = {}): Promise<World> {
  const emu = await startEc2Emulator()
  open.push(emu)
  const st = emu.state
  const subnetId = st.addSubnet()
  const me = st.addInstance(subnetId, ['172.31.1.10'], ['172.31.1.11', '172.31.1.12'])
  const other = st.addInstance(subnetId, ['172.31.1.20'])
  const main = options.mainTable === false ? st.addTable() : st.addTable({ main: true })
  const table = options.subnetTable === false ? st.addTable() : st.addTable({ subnetIds: [subnetId] })
  emu.identity = { region: 'eu-central-1', instanceId: me.id }
  setEnv(emu, options.credentials === false ? undefined : { id: TEST_ACCESS_KEY_ID, secret: TEST_SECRET_ACCESS_KEY })
  const acquired: LeaseAttrs[] = []
  const subnetManager = {
    name: 'fake',
    async acquireLease(_c: NetworkConfig, attrs: LeaseAttrs) {
      acquired.push(attrs)
      return { subnet: parseCidr(SUBNET)!, attrs, expiration: Date.now() + 86_400_000 }
    },
  } as unknown as SubnetManager
  const logger = new MemoryLogger()
  const deps: BackendDeps = {
    subnetManager,
    // the interface address is the ENI's secondary address: the backend must match all of them
    extIface: { name: 'eth1', index: 3, mtu: 9001, ifaceAddr: parseIp('172.31.1.12')!, extAddr: parseIp('172.31.1.12')! },
    kernel: {} as Kernel,
    logger,
    clock: systemClock,
  }
  return { emu, me, other, subnetId, table, main, logger, acquired, deps }
}

const backendOf = (w: World, section: Record<string, unknown> = {}): Backend => awsVpc(parseAwsVpcOptions(section), w.deps, { retryPolicy: FAST })
const register = (b: Backend) => b.registerNetwork(config, new AbortController().signal)
const routeTo = (t: EmuRouteTable, dest: string) => t.routes.find((r) => r.destination === dest)
const myEni = (w: World) => w.me.eniIds[1]!

test('fresh start: lease, IMDSv2 identity, source/dest check off, route created (through the registry)', async () => {
  const w = await world()
  const factory = await backendRegistry['aws-vpc']!.load()
  const backend = factory(backendRegistry['aws-vpc']!.parseOptions({}), w.deps)
  const net = await register(backend)
  assert.equal(net.mtu, 9001)
  assert.equal(w.acquired[0]?.backendType, 'aws-vpc')
  assert.deepEqual(routeTo(w.table, SUBNET), { destination: SUBNET, origin: 'CreateRoute', eniId: myEni(w) })
  assert.equal(w.emu.state.enis.get(myEni(w))!.sourceDestCheck, false)
  assert.equal(w.emu.state.enis.get(w.me.eniIds[0]!)!.sourceDestCheck, true)
  assert.equal(routeTo(w.main, SUBNET), undefined)
  // IMDSv2: a token was fetched and every metadata read carried it
  assert.equal(w.emu.imdsCalls[0]?.path, '/latest/api/token')
  assert.ok(w.emu.imdsCalls.filter((c) => c.method === 'GET').every((c) => c.withToken && c.status === 200))
  // the SDK signed for the region IMDS reported
  assert.ok(w.emu.calls.every((c) => c.region === 'eu-central-1' && c.status === 200))
  assert.deepEqual(w.emu.calls.map((c) => c.action), ['DescribeInstances', 'ModifyNetworkInterfaceAttribute', 'DescribeRouteTables', 'DescribeRouteTables', 'CreateRoute'])
  const ac = new AbortController()
  const run = net.run(ac.signal)
  ac.abort()
  await run
})

test('restart: a correct route is left alone (no Delete/Create/Replace call)', async () => {
  const w = await world()
  await register(backendOf(w))
  const before = w.emu.calls.length
  await register(backendOf(w))
  const second = w.emu.calls.slice(before).map((c) => c.action)
  // source/dest check is already off (DescribeInstances says so): no Modify call either
  assert.deepEqual(second, ['DescribeInstances', 'DescribeRouteTables', 'DescribeRouteTables'])
  assert.equal(w.logger.find('route already correct').length, 1)
  assert.deepEqual(w.emu.mutations().filter((m) => !m.startsWith('Modify')), [`CreateRoute ${w.table.id} ${SUBNET}`])
})

test('a route pointing at another ENI is corrected in place', async () => {
  const w = await world()
  w.emu.state.createRoute(w.table.id, SUBNET, { eniId: w.other.eniIds[0]! })
  await register(backendOf(w))
  assert.equal(routeTo(w.table, SUBNET)?.eniId, myEni(w))
  assert.deepEqual(w.emu.mutations().filter((m) => !m.startsWith('Modify')), [`ReplaceRoute ${w.table.id} ${SUBNET}`])
  assert.equal(w.logger.find('route corrected')[0]?.fields.reason, 'other-target')
})

test('blackhole routes inside the network are deleted, those outside are left', async () => {
  const w = await world()
  const st = w.emu.state
  const gone = st.addInstance(w.subnetId, ['172.31.1.30'])
  st.createRoute(w.table.id, '10.244.7.0/24', { eniId: gone.eniIds[0]! })
  st.createRoute(w.table.id, '192.168.5.0/24', { eniId: gone.eniIds[0]! })
  st.createRoute(w.table.id, '10.244.8.0/24', { eniId: w.other.eniIds[0]! })
  st.deleteEni(gone.eniIds[0]!)
  assert.equal(st.routeState(routeTo(w.table, '10.244.7.0/24')!), 'blackhole')
  await register(backendOf(w))
  assert.equal(routeTo(w.table, '10.244.7.0/24'), undefined)
  assert.equal(st.routeState(routeTo(w.table, '192.168.5.0/24')!), 'blackhole')
  assert.equal(st.routeState(routeTo(w.table, '10.244.8.0/24')!), 'active')
  assert.deepEqual(w.emu.mutations().filter((m) => !m.startsWith('Modify')), [`DeleteRoute ${w.table.id} 10.244.7.0/24`, `CreateRoute ${w.table.id} ${SUBNET}`])
})

test('table auto-detection: subnet association, then the main table', async () => {
  const w = await world({ subnetTable: false })
  await register(backendOf(w))
  assert.equal(routeTo(w.main, SUBNET)?.eniId, myEni(w))
  assert.equal(routeTo(w.table, SUBNET), undefined)
  const filters = w.emu.calls.filter((c) => c.action === 'DescribeRouteTables').map((c) => c.params['Filter.1.Name'])
  assert.deepEqual(filters.slice(0, 2), ['association.subnet-id', 'association.main'])
  assert.equal(w.logger.find('route table detected')[0]?.fields.via, 'main table')
})

test('no subnet table and no main table: main route table not found', async () => {
  const w = await world({ subnetTable: false, mainTable: false })
  await assert.rejects(register(backendOf(w)), (err: unknown) => {
    assert.ok(isWeftError(err))
    assert.match(err.message, /^main route table not found: subnet subnet-[0-9a-f]+ has no associated table and VPC vpc-[0-9a-f]+ has no main table; set Backend\.RouteTableID$/)
    return true
  })
  assert.deepEqual(w.emu.mutations().filter((m) => !m.startsWith('Modify')), [])
})

test('configured RouteTableID list: every table programmed; an unknown id surfaces EC2 code and resource', async () => {
  const w = await world()
  await register(backendOf(w, { routetableid: [w.table.id, w.main.id] }))
  assert.equal(routeTo(w.table, SUBNET)?.eniId, myEni(w))
  assert.equal(routeTo(w.main, SUBNET)?.eniId, myEni(w))

  await assert.rejects(register(backendOf(w, { routetableid: 'rtb-0123456789abcdef0' })), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_API_FAILED'))
    assert.equal(err.message, "DescribeRouteTables rtb-0123456789abcdef0: InvalidRouteTableID.NotFound The routeTable ID 'rtb-0123456789abcdef0' does not exist")
    return true
  })
})

test('route limit reached: a plain message before the API refuses; a lower real quota is explained too', async () => {
  const w = await world()
  for (let i = 0; i < 50; i++) w.emu.state.createRoute(w.table.id, `10.100.${i}.0/24`, { eniId: w.other.eniIds[0]! })
  const created = w.emu.calls.length
  await assert.rejects(register(backendOf(w)), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_ROUTE_LIMIT'))
    assert.match(err.message, new RegExp(`^route table ${w.table.id} already holds 50 routes and the aws limit is 50: cannot add the route for 10\\.244\\.3\\.0/24; ask AWS to raise the "Routes per route table" quota`))
    return true
  })
  assert.ok(!w.emu.calls.slice(created).some((c) => c.action === 'CreateRoute'), 'no CreateRoute was sent')

  // the operator claims a higher quota than the account has: EC2's refusal is explained the same way
  await assert.rejects(register(backendOf(w, { routelimit: 100 })), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_ROUTE_LIMIT'))
    assert.match(err.message, /refused the route for 10\.244\.3\.0\/24 \(CreateRoute rtb-\S+ 10\.244\.3\.0\/24: RouteLimitExceeded .*\); the table's quota is lower than Backend\.RouteLimit 100/)
    return true
  })
})

test('throttling and 5xx are retried with backoff', async () => {
  const w = await world()
  w.emu.failNext('DescribeInstances', INTERNAL)
  w.emu.failNext('DescribeRouteTables', UNAVAILABLE)
  w.emu.failNext('CreateRoute', THROTTLE, 2)
  await register(backendOf(w))
  assert.equal(routeTo(w.table, SUBNET)?.eniId, myEni(w))
  const creates = w.emu.calls.filter((c) => c.action === 'CreateRoute').map((c) => c.errorCode ?? 'ok')
  assert.deepEqual(creates, ['RequestLimitExceeded', 'RequestLimitExceeded', 'ok'])
  const retries = w.logger.find('cloud call failed, retrying')
  assert.equal(retries.length, 4)
  assert.match(String(retries.at(-1)?.fields.error), /^CreateRoute rtb-\S+ 10\.244\.3\.0\/24: RequestLimitExceeded Request limit exceeded$/)
})

test('throttling that does not pass: the last EC2 error with operation, resource and code', async () => {
  const w = await world()
  w.emu.failNext('CreateRoute', THROTTLE, FAST.maxAttempts)
  await assert.rejects(register(backendOf(w)), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_API_FAILED'))
    assert.equal(err.message, `CreateRoute ${w.table.id} ${SUBNET}: RequestLimitExceeded Request limit exceeded`)
    return true
  })
  assert.equal(w.emu.calls.filter((c) => c.action === 'CreateRoute').length, FAST.maxAttempts)
})

test('missing credentials: CLOUD_CREDENTIALS, one line, no stack', async () => {
  const w = await world({ credentials: false })
  await assert.rejects(register(backendOf(w)), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_CREDENTIALS'))
    assert.match(err.message, /^aws credentials not found \(looked in environment variables, shared config files, container and instance role\); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/)
    assert.ok(!err.message.includes('\n') && !/\bat \S+ \(/.test(err.message))
    return true
  })
  assert.equal(w.emu.calls.length, 0, 'nothing unsigned reached EC2')
})

test('wrong secret: EC2 rejects the signature, reported as CLOUD_CREDENTIALS without the secret', async () => {
  const w = await world()
  const secret = 'definitely-wrong-secret-0000000000000000'
  process.env.AWS_SECRET_ACCESS_KEY = secret
  await assert.rejects(register(backendOf(w)), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_CREDENTIALS'))
    assert.match(err.message, /^DescribeInstances i-[0-9a-f]+: SignatureDoesNotMatch /)
    assert.ok(!err.message.includes(secret))
    return true
  })
  assert.ok(!JSON.stringify(w.logger.entries.map((e) => ({ ...e, err: String(e.err) }))).includes(secret))
})

test('instance-role credentials from IMDS (SDK default chain); secrets never logged', async () => {
  const w = await world({ credentials: false })
  w.emu.instanceRole = 'weft-node'
  await register(backendOf(w))
  assert.equal(routeTo(w.table, SUBNET)?.eniId, myEni(w))
  assert.ok(w.emu.imdsCalls.some((c) => c.path === '/latest/meta-data/iam/security-credentials/weft-node' && c.status === 200))
  assert.ok(!JSON.stringify(w.logger.entries).includes(TEST_SECRET_ACCESS_KEY))
})

test('IMDS: v1 fallback when the token endpoint is absent; tokens when v2 is required', async () => {
  const w = await world()
  w.emu.imdsMode = 'v1-only'
  await register(backendOf(w))
  const gets = w.emu.imdsCalls.filter((c) => c.method === 'GET')
  assert.ok(gets.length >= 2 && gets.every((c) => !c.withToken && c.status === 200))
  assert.equal(routeTo(w.table, SUBNET)?.eniId, myEni(w))

  const v2 = await world()
  v2.emu.imdsMode = 'v2-required'
  await register(backendOf(v2))
  assert.ok(v2.emu.imdsCalls.filter((c) => c.method === 'GET').every((c) => c.withToken && c.status === 200))
})

test('IMDS unreachable: a clear error naming the endpoint and the variable to set', async () => {
  const w = await world()
  const closed = await startEc2Emulator()
  const deadUrl = closed.url
  await closed.close()
  process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = deadUrl
  await assert.rejects(register(backendOf(w)), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_API_FAILED'))
    assert.match(err.message, new RegExp(`^instance metadata service at ${deadUrl.replace(/\./g, '\\.')} is not reachable: .+; run on EC2 or set AWS_EC2_METADATA_SERVICE_ENDPOINT$`))
    return true
  })
  assert.equal(w.emu.calls.length, 0)
})

test('abort during a throttling backoff stops registration with the signal reason', async () => {
  const w = await world()
  w.emu.failNext('CreateRoute', THROTTLE, 100)
  const backend = awsVpc(parseAwsVpcOptions({}), w.deps, { retryPolicy: { maxAttempts: 100, baseDelayMs: 5_000, maxDelayMs: 5_000 } })
  const ac = new AbortController()
  const started = Date.now()
  const p = backend.registerNetwork(config, ac.signal)
  while (!w.emu.calls.some((c) => c.action === 'CreateRoute')) await new Promise((r) => setTimeout(r, 5))
  const reason = new Error('shutting down')
  ac.abort(reason)
  await assert.rejects(p, (err) => err === reason)
  assert.ok(Date.now() - started < 2_000, 'did not wait out the 5 s backoff')
  assert.equal(w.emu.calls.filter((c) => c.action === 'CreateRoute').length, 1)
})
