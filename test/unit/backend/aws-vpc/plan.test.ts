import { test } from 'node:test'
import assert from 'node:assert/strict'
import { countQuotaRoutes, planRouteTable } from '../../../../src/backend/aws-vpc/plan.ts'
import type { RouteTable, TableRoute } from '../../../../src/backend/aws-vpc/route-table-api.ts'
import { parseCidr } from '../../../../src/ip/ip.ts'

const network = parseCidr('10.244.0.0/16')!
const subnet = parseCidr('10.244.3.0/24')!
const local: TableRoute = { destination: '172.31.0.0/16', state: 'active', gatewayId: 'local', origin: 'CreateRouteTable' }
const igw: TableRoute = { destination: '0.0.0.0/0', state: 'active', gatewayId: 'igw-1', origin: 'CreateRoute' }
const table = (...routes: TableRoute[]): RouteTable => ({ id: 'rtb-1', vpcId: 'vpc-1', routes: [local, igw, ...routes], otherRouteCount: 0 })
const plan = (t: RouteTable) => planRouteTable({ table: t, network, subnet, eniId: 'eni-me' })

test('missing route is created', () => {
  const p = plan(table({ destination: '10.244.1.0/24', state: 'active', eniId: 'eni-a', origin: 'CreateRoute' }))
  assert.deepEqual(p.deletes, [])
  assert.deepEqual(p.upsert, { kind: 'create', tableId: 'rtb-1', destination: '10.244.3.0/24', eniId: 'eni-me' })
  assert.equal(p.reason, 'missing')
  assert.equal(p.countAfterDeletes, 2) // igw + peer; the local route does not count
})

test('a correct route is left alone', () => {
  const p = plan(table({ destination: '10.244.3.0/24', state: 'active', eniId: 'eni-me', origin: 'CreateRoute' }))
  assert.equal(p.upsert, undefined)
  assert.equal(p.reason, 'correct')
})

test('a route to another ENI or an instance is replaced in place', () => {
  const p = plan(table({ destination: '10.244.3.0/24', state: 'active', eniId: 'eni-old', origin: 'CreateRoute' }))
  assert.deepEqual(p.upsert, { kind: 'replace', tableId: 'rtb-1', destination: '10.244.3.0/24', eniId: 'eni-me' })
  assert.equal(p.reason, 'other-target')
  const q = plan(table({ destination: '10.244.3.0/24', state: 'active', instanceId: 'i-1', origin: 'CreateRoute' }))
  assert.equal(q.upsert?.kind, 'replace')
})

test('our own blackholed route is replaced, not deleted', () => {
  const p = plan(table({ destination: '10.244.3.0/24', state: 'blackhole', eniId: 'eni-gone', origin: 'CreateRoute' }))
  assert.deepEqual(p.deletes, [])
  assert.equal(p.upsert?.kind, 'replace')
  assert.equal(p.reason, 'blackhole')
})

test('blackholes inside the network are deleted, outside and active ones kept', () => {
  const p = plan(table(
    { destination: '10.244.7.0/24', state: 'blackhole', eniId: 'eni-x', origin: 'CreateRoute' },
    { destination: '10.244.8.0/24', state: 'active', eniId: 'eni-y', origin: 'CreateRoute' },
    { destination: '192.168.0.0/24', state: 'blackhole', eniId: 'eni-z', origin: 'CreateRoute' },
    { destination: '10.0.0.0/8', state: 'blackhole', gatewayId: 'vgw-1', origin: 'CreateRoute' },
  ))
  assert.deepEqual(p.deletes, [{ kind: 'delete', tableId: 'rtb-1', destination: '10.244.7.0/24' }])
  assert.equal(p.countAfterDeletes, 5 - 1)
})

test('quota count skips local and propagated routes, counts IPv6/prefix-list routes', () => {
  const t: RouteTable = { ...table({ destination: '10.9.0.0/16', state: 'active', gatewayId: 'vgw-1', origin: 'EnableVgwRoutePropagation' }), otherRouteCount: 2 }
  assert.equal(countQuotaRoutes(t), 1 + 2)
})
