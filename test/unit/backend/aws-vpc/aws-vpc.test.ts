/** The aws-vpc backend against an in-memory RouteTableApi and a fake IMDS (no network). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { awsVpc } from '../../../../src/backend/aws-vpc/aws-vpc.ts'
import { parseAwsVpcOptions } from '../../../../src/backend/aws-vpc/aws-vpc-options.ts'
import type { BackendDeps } from '../../../../src/backend/backend.ts'
import type { NetworkConfig } from '../../../../src/config/network-config.ts'
import type { Kernel } from '../../../../src/kernel/kernel.ts'
import type { LeaseAttrs } from '../../../../src/lease/lease.ts'
import type { SubnetManager } from '../../../../src/subnet/subnet-manager.ts'
import { CloudError } from '../../../../src/backend/cloud/cloud-error.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { parseCidr, parseIp } from '../../../../src/ip/ip.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryRouteTableApi } from './memory-route-table-api.ts'
import type { RouteOp } from '../../../../src/backend/aws-vpc/route-table-api.ts'
import type { MemoryTable } from './memory-route-table-api.ts'

const config: NetworkConfig = {
  enableIPv4: true,
  enableIPv6: false,
  enableNFTables: false,
  ipv4: { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: parseIp('10.244.1.0')!, subnetMax: parseIp('10.244.255.0')! },
  backend: { type: 'aws-vpc', options: {} },
}

const instance = {
  id: 'i-me', vpcId: 'vpc-1', subnetId: 'subnet-a',
  enis: [
    { id: 'eni-other', subnetId: 'subnet-b', privateIps: ['172.31.9.9'], sourceDestCheck: true },
    { id: 'eni-me', subnetId: 'subnet-a', privateIps: ['172.31.1.10', '172.31.1.11'], sourceDestCheck: true },
  ],
}

function setup(tables: MemoryTable[], section: Record<string, unknown> = {}, inst: typeof instance = instance) {
  const acquired: LeaseAttrs[] = []
  const subnetManager = {
    name: 'fake',
    async acquireLease(_c: NetworkConfig, attrs: LeaseAttrs) {
      acquired.push(attrs)
      return { subnet: parseCidr('10.244.3.0/24')!, attrs, expiration: 0 }
    },
  } as unknown as SubnetManager
  const logger = new MemoryLogger()
  const deps: BackendDeps = {
    subnetManager,
    extIface: { name: 'eth0', index: 2, mtu: 9001, ifaceAddr: parseIp('172.31.1.11')!, extAddr: parseIp('172.31.1.11')! },
    kernel: {} as Kernel,
    logger,
    clock: new FakeClock(),
  }
  const api = new MemoryRouteTableApi(inst, tables)
  const regions: string[] = []
  const backend = awsVpc(parseAwsVpcOptions(section), deps, {
    imds: { identity: async () => ({ region: 'eu-west-1', instanceId: 'i-me' }) },
    connect: async (region) => (regions.push(region), api),
  })
  return { backend, api, acquired, logger, regions }
}

const table = (id: string, extra: Partial<MemoryTable> = {}): MemoryTable => ({
  id, vpcId: 'vpc-1', main: false, subnets: [], routes: [{ destination: '172.31.0.0/16', state: 'active', gatewayId: 'local', origin: 'CreateRouteTable' }], ...extra,
})

test('registers: lease tagged aws-vpc, route created in the subnet table, mtu from the interface', async () => {
  const t = table('rtb-a', { subnets: ['subnet-a'] })
  const { backend, api, acquired, regions } = setup([t, table('rtb-main', { main: true })])
  const net = await backend.registerNetwork(config, new AbortController().signal)
  assert.equal(acquired[0]?.backendType, 'aws-vpc')
  assert.equal(net.mtu, 9001)
  assert.deepEqual(regions, ['eu-west-1'])
  assert.deepEqual(api.calls, [
    'DescribeInstances i-me',
    'ModifyNetworkInterfaceAttribute eni-me',
    'DescribeRouteTables subnet=subnet-a',
    'DescribeRouteTables rtb-a',
    'CreateRoute rtb-a 10.244.3.0/24',
  ])
  assert.deepEqual(t.routes.at(-1), { destination: '10.244.3.0/24', state: 'active', eniId: 'eni-me', origin: 'CreateRoute' })
  assert.equal(api.closed, true, 'the API is released after registration')
  const ac = new AbortController()
  const running = net.run(ac.signal)
  ac.abort()
  await running
})

test('falls back to the main table, then says main route table not found', async () => {
  const main = table('rtb-main', { main: true })
  const { backend, api } = setup([main])
  await backend.registerNetwork(config, new AbortController().signal)
  assert.ok(api.calls.includes('DescribeRouteTables main vpc=vpc-1'))
  assert.equal(main.routes.length, 2)

  const none = setup([table('rtb-x', { vpcId: 'vpc-2', main: true })])
  await assert.rejects(none.backend.registerNetwork(config, new AbortController().signal), (err: unknown) => {
    assert.ok(isWeftError(err))
    assert.match(err.message, /^main route table not found/)
    return true
  })
})

test('configured tables are all programmed; a correct route is left alone', async () => {
  const a = table('rtb-a', { routes: [{ destination: '10.244.3.0/24', state: 'active', eniId: 'eni-me', origin: 'CreateRoute' }] })
  const b = table('rtb-b')
  const { backend, api, logger } = setup([a, b], { routetableid: ['rtb-a', 'rtb-b'] })
  await backend.registerNetwork(config, new AbortController().signal)
  assert.ok(!api.calls.some((c) => c.includes('rtb-a 10.244.3.0/24')), 'no change to rtb-a')
  assert.ok(api.calls.includes('CreateRoute rtb-b 10.244.3.0/24'))
  assert.equal(logger.find('route already correct').length, 1)
})

test('source/dest check failure is only a warning', async () => {
  const { backend, api, logger } = setup([table('rtb-a', { subnets: ['subnet-a'] })])
  api.failures.set('ModifyNetworkInterfaceAttribute', new CloudError({ operation: 'ModifyNetworkInterfaceAttribute', resource: 'eni-me', cloudCode: 'UnauthorizedOperation', cloudMessage: 'no', retryable: false }))
  await backend.registerNetwork(config, new AbortController().signal)
  assert.equal(logger.find('could not disable source/dest check; pod traffic to this host may be dropped').length, 1)
})

test('source/dest check already off: no Modify call', async () => {
  const off = { ...instance, enis: instance.enis.map((n) => ({ ...n, sourceDestCheck: n.id !== 'eni-me' })) }
  const { backend, api } = setup([table('rtb-a', { subnets: ['subnet-a'] })], {}, off)
  await backend.registerNetwork(config, new AbortController().signal)
  assert.ok(!api.calls.some((c) => c.startsWith('ModifyNetworkInterfaceAttribute')))
  assert.ok(api.calls.includes('CreateRoute rtb-a 10.244.3.0/24'))
})

test('no ENI with the interface address is a clear error', async () => {
  const moved = { ...instance, enis: instance.enis.filter((n) => n.id !== 'eni-me') }
  const b2 = awsVpc(parseAwsVpcOptions({}), {
    subnetManager: { acquireLease: async (_c: unknown, attrs: LeaseAttrs) => ({ subnet: parseCidr('10.244.3.0/24')!, attrs }) } as unknown as SubnetManager,
    extIface: { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: parseIp('172.31.1.11')! },
    kernel: {} as Kernel, logger: new MemoryLogger(), clock: new FakeClock(),
  }, { imds: { identity: async () => ({ region: 'r', instanceId: 'i-me' }) }, connect: async () => new MemoryRouteTableApi(moved, []) })
  await assert.rejects(b2.registerNetwork(config, new AbortController().signal), (err: unknown) => {
    assert.ok(isWeftError(err, 'BACKEND_UNSUPPORTED'))
    assert.equal(err.message, 'no network interface of instance i-me holds the interface address 172.31.1.11')
    return true
  })
})

test('route limit: refuses before the API with counts, limit and advice; deletes blackholes first', async () => {
  const routes = [...table('x').routes]
  for (let i = 0; i < 50; i++) routes.push({ destination: `10.${100 + Math.floor(i / 200)}.${i}.0/24`, state: 'active', eniId: `eni-${i}`, origin: 'CreateRoute' })
  const full = table('rtb-full', { subnets: ['subnet-a'], routes })
  const { backend, api } = setup([full])
  await assert.rejects(backend.registerNetwork(config, new AbortController().signal), (err: unknown) => {
    assert.ok(isWeftError(err, 'CLOUD_ROUTE_LIMIT'))
    assert.match(err.message, /^route table rtb-full already holds 50 routes and the aws limit is 50: cannot add the route for 10\.244\.3\.0\/24; ask AWS to raise/)
    return true
  })
  assert.ok(!api.calls.some((c) => c.startsWith('CreateRoute')))

  // one blackhole inside the network frees a slot
  routes[5] = { destination: '10.244.77.0/24', state: 'blackhole', eniId: 'eni-dead', origin: 'CreateRoute' }
  const again = setup([table('rtb-full', { subnets: ['subnet-a'], routes: [...routes] })])
  await again.backend.registerNetwork(config, new AbortController().signal)
  assert.deepEqual(again.api.calls.slice(-2), ['DeleteRoute rtb-full 10.244.77.0/24', 'CreateRoute rtb-full 10.244.3.0/24'])
})

test('create racing another writer falls back to replace', async () => {
  const t = table('rtb-a', { subnets: ['subnet-a'] })
  const { backend, api } = setup([t])
  const change = api.changeRoute.bind(api)
  api.changeRoute = async (op: RouteOp) => {
    // another host (or an operator) adds the same destination between our describe and create
    if (op.kind === 'create') t.routes.push({ destination: op.destination, state: 'active', eniId: 'eni-old', origin: 'CreateRoute' })
    return change(op)
  }
  await backend.registerNetwork(config, new AbortController().signal)
  assert.deepEqual(api.calls.slice(-2), ['CreateRoute rtb-a 10.244.3.0/24', 'ReplaceRoute rtb-a 10.244.3.0/24'])
  assert.equal(t.routes.find((r) => r.destination === '10.244.3.0/24')?.eniId, 'eni-me')
})

test('IPv6-only config is refused', async () => {
  const { backend } = setup([])
  await assert.rejects(backend.registerNetwork({ ...config, enableIPv4: false, ipv4: undefined, enableIPv6: true }, new AbortController().signal), (err: unknown) => isWeftError(err, 'BACKEND_UNSUPPORTED'))
})

test('close to the limit: route added with a warning naming the count and the limit', async () => {
  const routes = [...table('x').routes]
  for (let i = 0; i < 45; i++) routes.push({ destination: `10.100.${i}.0/24`, state: 'active', eniId: `eni-${i}`, origin: 'CreateRoute' })
  const { backend, api, logger } = setup([table('rtb-a', { subnets: ['subnet-a'], routes })])
  await backend.registerNetwork(config, new AbortController().signal)
  assert.ok(api.calls.includes('CreateRoute rtb-a 10.244.3.0/24'))
  assert.deepEqual(logger.find('route table is close to its route limit')[0]?.fields, { component: 'backend/aws-vpc', routeTable: 'rtb-a', routes: 46, limit: 50 })
})

test('a configured RouteLimit above 50 lets the table grow past the default', async () => {
  const routes = [...table('x').routes]
  for (let i = 0; i < 60; i++) routes.push({ destination: `10.100.${i}.0/24`, state: 'active', eniId: `eni-${i}`, origin: 'CreateRoute' })
  const { backend, api } = setup([table('rtb-a', { subnets: ['subnet-a'], routes })], { routelimit: 200 })
  await backend.registerNetwork(config, new AbortController().signal)
  assert.ok(api.calls.includes('CreateRoute rtb-a 10.244.3.0/24'))
})
