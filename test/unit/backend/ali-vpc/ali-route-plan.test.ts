import { test } from 'node:test'
import assert from 'node:assert/strict'
import { planAliRoutes } from '../../../../src/backend/ali-vpc/ali-route-plan.ts'
import type { AliRouteEntry } from '../../../../src/backend/ali-vpc/vpc-routes-api.ts'
import { parseCidr } from '../../../../src/ip/ip.ts'

const ME = 'i-me'
const entry = (dest: string, instanceId: string, extra: Partial<AliRouteEntry> = {}): AliRouteEntry =>
  ({ destinationCidrBlock: dest, type: 'Custom', status: 'Available', nextHopType: 'Instance', instanceId, ...extra })
const plan = (entries: AliRouteEntry[]) => planAliRoutes({ entries, instanceId: ME, subnet: parseCidr('10.40.12.0/24')!, network: parseCidr('10.40.0.0/16')! })
const system = [entry('100.64.0.0/10', '', { type: 'System', nextHopType: 'service' }), entry('192.168.0.0/24', '', { type: 'System', nextHopType: 'local' })]

test('empty table: create, nothing to delete, system entries not counted', () => {
  assert.deepEqual(plan(system), { deletes: [], keep: undefined, create: true, customAfterDeletes: 0 })
})

test('our entry is kept, even when still Pending', () => {
  const ours = entry('10.40.12.0/24', ME, { status: 'Pending' })
  const p = plan([...system, ours])
  assert.equal(p.create, false)
  assert.equal(p.keep, ours)
  assert.deepEqual(p.deletes, [])
})

test('stale entries of this instance inside the network go; default route and outside ranges stay', () => {
  const p = plan([entry('10.40.3.0/24', ME), entry('0.0.0.0/0', ME), entry('172.16.0.0/24', ME), entry('10.40.7.0/24', 'i-other'), entry('10.0.0.0/8', ME)])
  assert.deepEqual(p.deletes.map((d) => [d.entry.destinationCidrBlock, d.reason]), [['10.40.3.0/24', 'stale entry of this instance']])
  assert.equal(p.create, true)
  assert.equal(p.customAfterDeletes, 4)
})

test('our subnet via another instance is deleted; a duplicate of ours too', () => {
  const p = plan([entry('10.40.12.0/24', 'i-old')])
  assert.equal(p.deletes.length, 1)
  assert.match(p.deletes[0]!.reason, /subnet now leased to this host, entry points at i-old/)
  assert.equal(p.create, true)
  assert.equal(p.customAfterDeletes, 0)
})
