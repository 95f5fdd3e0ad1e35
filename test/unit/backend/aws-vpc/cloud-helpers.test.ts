/** Tests for the shared cloud helpers in src/backend/cloud (retry, route limit, error format). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CloudError, credentialsError, formatCloudFailure, isRetryableCloudError } from '../../../../src/backend/cloud/cloud-error.ts'
import { withRetry } from '../../../../src/backend/cloud/retry.ts'
import { checkRouteLimit, nearRouteLimit } from '../../../../src/backend/cloud/route-limit.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { isWeftError } from '../../../../src/errors.ts'

const throttle = (): CloudError =>
  new CloudError({ operation: 'CreateRoute', resource: 'rtb-1', cloudCode: 'RequestLimitExceeded', cloudMessage: 'Request limit exceeded.', httpStatus: 503, retryable: true })
const notFound = (): CloudError =>
  new CloudError({ operation: 'DescribeRouteTables', resource: 'rtb-9', cloudCode: 'InvalidRouteTableID.NotFound', cloudMessage: "The routeTable ID 'rtb-9' does not exist", httpStatus: 400, retryable: false })

test('cloud error message is operation resource: code message', () => {
  const err = notFound()
  assert.equal(err.message, "DescribeRouteTables rtb-9: InvalidRouteTableID.NotFound The routeTable ID 'rtb-9' does not exist")
  assert.ok(isWeftError(err, 'CLOUD_API_FAILED'))
  assert.equal(err.details.cloudCode, 'InvalidRouteTableID.NotFound')
  assert.equal(throttle().message, 'CreateRoute rtb-1: RequestLimitExceeded Request limit exceeded')
  assert.equal(formatCloudFailure({ operation: 'DescribeInstances', resource: '', cloudCode: 'X', cloudMessage: 'X' }), 'DescribeInstances: X')
})

test('retryable classification', () => {
  assert.equal(isRetryableCloudError(throttle()), true)
  assert.equal(isRetryableCloudError(notFound()), false)
  assert.equal(isRetryableCloudError(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), true)
  assert.equal(isRetryableCloudError(new Error('boom')), false)
})

test('withRetry retries throttling with growing delays, then succeeds', async () => {
  const clock = new FakeClock()
  const logger = new MemoryLogger()
  const started: number[] = []
  const p = withRetry(
    async (attempt) => {
      started.push(clock.now())
      if (attempt < 4) throw throttle()
      return 'ok'
    },
    { clock, logger, random: () => 0.5 },
    { what: 'CreateRoute rtb-1', policy: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 300 } },
  )
  for (let i = 0; i < 3; i++) {
    while (clock.pending === 0) await new Promise((r) => setImmediate(r))
    await clock.advance(1000)
  }
  assert.equal(await p, 'ok')
  const gaps = started.slice(1).map((t, i) => t - (started[i] as number))
  assert.equal(started.length, 4)
  assert.equal(logger.find('cloud call failed, retrying').length, 3)
  // delays 100, 200, 300(cap), with random 0.5 → 75, 150, 225; the clock jumps by 1000 each time.
  assert.deepEqual(logger.find('cloud call failed, retrying').map((e) => e.fields.delayMs), [75, 150, 225])
  assert.deepEqual(gaps, [1000, 1000, 1000])
})

test('withRetry rethrows a non-retryable error at once', async () => {
  const clock = new FakeClock()
  let calls = 0
  await assert.rejects(
    withRetry(async () => { calls++; throw notFound() }, { clock }, { what: 'x' }),
    (err: unknown) => err instanceof CloudError && err.cloudCode === 'InvalidRouteTableID.NotFound',
  )
  assert.equal(calls, 1)
})

test('withRetry gives up after maxAttempts with the last error', async () => {
  const clock = new FakeClock()
  let calls = 0
  const p = withRetry(async () => { calls++; throw throttle() }, { clock, random: () => 0 }, { what: 'x', policy: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 10 } })
  const settled = p.then(() => 'resolved', (e: unknown) => e)
  for (let i = 0; i < 2; i++) {
    while (clock.pending === 0) await new Promise((r) => setImmediate(r))
    await clock.advance(10)
  }
  const err = await settled
  assert.ok(err instanceof CloudError && err.cloudCode === 'RequestLimitExceeded')
  assert.equal(calls, 3)
})

test('withRetry stops when the signal aborts during a backoff', async () => {
  const clock = new FakeClock()
  const ac = new AbortController()
  const p = withRetry(async () => { throw throttle() }, { clock }, { what: 'x', signal: ac.signal })
  while (clock.pending === 0) await new Promise((r) => setImmediate(r))
  const reason = new Error('stop')
  ac.abort(reason)
  await assert.rejects(p, (e) => e === reason)
})

test('route limit check says how many, the limit and what to do', () => {
  const base = { provider: 'aws', scope: 'route table rtb-1', limit: 50, destination: '10.5.7.0/24', hint: 'raise the quota' }
  assert.equal(checkRouteLimit({ ...base, existing: 49, adding: 1 }), undefined)
  assert.equal(checkRouteLimit({ ...base, existing: 50, adding: 0 }), undefined)
  const err = checkRouteLimit({ ...base, existing: 50, adding: 1 })
  assert.ok(isWeftError(err, 'CLOUD_ROUTE_LIMIT'))
  assert.equal(err.message, 'route table rtb-1 already holds 50 routes and the aws limit is 50: cannot add the route for 10.5.7.0/24; raise the quota')
  assert.equal(nearRouteLimit(45, 50), true)
  assert.equal(nearRouteLimit(44, 50), false)
})

test('credentials error has its own code and no secret', () => {
  const err = credentialsError('aws', 'not found', 'set AWS_ACCESS_KEY_ID')
  assert.ok(isWeftError(err, 'CLOUD_CREDENTIALS'))
  assert.equal(err.message, 'aws credentials not found; set AWS_ACCESS_KEY_ID')
})
