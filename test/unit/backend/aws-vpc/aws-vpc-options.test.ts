import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseAwsVpcOptions } from '../../../../src/backend/aws-vpc/aws-vpc-options.ts'
import { ConfigError, isWeftError } from '../../../../src/errors.ts'

const fails = (section: Record<string, unknown>, field: string, message: RegExp): void => {
  assert.throws(() => parseAwsVpcOptions(section), (err: unknown) => {
    assert.ok(err instanceof ConfigError && isWeftError(err, 'CONFIG_INVALID'))
    assert.equal(err.field, field)
    assert.match(err.message, message)
    return true
  })
}

test('defaults: no tables (auto-detect), limit 50', () => {
  assert.deepEqual(parseAwsVpcOptions({}), { routeTableIds: [], routeLimit: 50 })
})

test('RouteTableID as a string or a list', () => {
  assert.deepEqual(parseAwsVpcOptions({ routetableid: 'rtb-0abc' }).routeTableIds, ['rtb-0abc'])
  assert.deepEqual(parseAwsVpcOptions({ routetableid: ['rtb-1', ' rtb-2 '] }).routeTableIds, ['rtb-1', 'rtb-2'])
  assert.deepEqual(parseAwsVpcOptions({ routetableid: [] }).routeTableIds, [])
  assert.equal(parseAwsVpcOptions({ routelimit: 200 }).routeLimit, 200)
})

test('bad RouteTableID values name Backend.RouteTableID and the rule', () => {
  fails({ routetableid: 5 }, 'Backend.RouteTableID', /must be a string or a list of strings, got number 5$/)
  fails({ routetableid: { a: 1 } }, 'Backend.RouteTableID', /must be a string or a list of strings, got object$/)
  fails({ routetableid: ['rtb-1', 7] }, 'Backend.RouteTableID', /entry 1 must be a string, got number 7$/)
  fails({ routetableid: '' }, 'Backend.RouteTableID', /entry 0 must not be empty$/)
  fails({ routetableid: ['rtb-1', 'rtb 2'] }, 'Backend.RouteTableID', /without spaces/)
  fails({ routetableid: ['rtb-1', 'rtb-1'] }, 'Backend.RouteTableID', /must not list rtb-1 twice$/)
})

test('RouteLimit must be an integer in 1..1000', () => {
  fails({ routelimit: 0 }, 'Backend.RouteLimit', /1\.\.1000/)
  fails({ routelimit: '50' }, 'Backend.RouteLimit', /must be an integer/)
})

test('unknown keys are rejected listing the known ones', () => {
  fails({ routetableids: 'rtb-1' }, 'Backend', /unknown key "routetableids"; expected one of Type, RouteTableID, RouteLimit$/)
})
