import { test } from 'node:test'
import assert from 'node:assert/strict'
import { desiredGceRoute, gceRouteName, planGceRoute, sameLink } from '../../../../src/backend/gce/gce-route-plan.ts'
import { parseCidr } from '../../../../src/ip/ip.ts'

const NET = 'https://www.googleapis.com/compute/v1/projects/p/global/networks/default'
const ME = 'https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/me'
const desired = desiredGceRoute(parseCidr('10.40.12.0/24')!, NET, ME)

test('route name replaces . and / with - (flannel-10-40-12-0-24)', () => {
  assert.equal(gceRouteName(parseCidr('10.40.12.0/24')!), 'flannel-10-40-12-0-24')
  assert.equal(gceRouteName(parseCidr('172.16.0.0/20')!), 'flannel-172-16-0-0-20')
  assert.deepEqual(desired, { name: 'flannel-10-40-12-0-24', destRange: '10.40.12.0/24', network: NET, nextHopInstance: ME, priority: 1000 })
})

test('absent route is created; our own route is kept', () => {
  assert.deepEqual(planGceRoute(undefined, desired), { action: 'create' })
  assert.deepEqual(planGceRoute({ ...desired }, desired), { action: 'keep' })
  // The API may report links under compute.googleapis.com; they name the same resource.
  assert.deepEqual(planGceRoute({ ...desired, nextHopInstance: ME.replace('www.googleapis.com', 'compute.googleapis.com') }, desired), { action: 'keep' })
})

test('a route with our name but another next hop, range or network is replaced', () => {
  assert.equal(planGceRoute({ ...desired, nextHopInstance: ME.replace('/me', '/other') }, desired).action, 'replace')
  assert.equal(planGceRoute({ ...desired, nextHopInstance: '' }, desired).action, 'replace')
  assert.equal(planGceRoute({ ...desired, destRange: '10.40.12.0/25' }, desired).action, 'replace')
  assert.equal(planGceRoute({ ...desired, network: NET.replace('default', 'prod') }, desired).action, 'replace')
  const plan = planGceRoute({ ...desired, nextHopInstance: ME.replace('/me', '/other') }, desired)
  assert.ok(plan.action === 'replace' && plan.reason.endsWith('/instances/other'))
})

test('sameLink compares from projects/ on', () => {
  assert.ok(sameLink(ME, 'projects/p/zones/z/instances/me'))
  assert.ok(!sameLink(ME, 'projects/p/zones/z/instances/mee'))
})
