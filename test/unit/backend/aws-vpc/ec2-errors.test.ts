/** SDK error → CloudError mapping and IMDS endpoint resolution (pure parts of the SDK/IMDS adapters). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { toCloudError } from '../../../../src/backend/aws-vpc/ec2-route-table-api.ts'
import { imdsEndpointFromEnv } from '../../../../src/backend/aws-vpc/imds.ts'
import { CloudError } from '../../../../src/backend/cloud/cloud-error.ts'
import { isWeftError } from '../../../../src/errors.ts'

/** The shape the SDK gives a service exception. */
const sdkError = (name: string, message: string, status: number, fault = 'client') =>
  Object.assign(new Error(message), { name, $fault: fault, $metadata: { httpStatusCode: status } })

test('service errors keep operation, resource and the EC2 code', () => {
  const err = toCloudError(sdkError('InvalidRouteTableID.NotFound', "The routeTable ID 'rtb-1' does not exist", 400), 'DescribeRouteTables', 'rtb-1')
  assert.ok(err instanceof CloudError)
  assert.equal(err.message, "DescribeRouteTables rtb-1: InvalidRouteTableID.NotFound The routeTable ID 'rtb-1' does not exist")
  assert.equal(err.retryable, false)
  assert.equal(err.httpStatus, 400)
})

test('throttling and 5xx are retryable; auth and limit errors get their own codes', () => {
  assert.equal((toCloudError(sdkError('RequestLimitExceeded', 'Request limit exceeded.', 503, 'server'), 'CreateRoute', 'rtb-1') as CloudError).retryable, true)
  assert.equal((toCloudError(sdkError('InternalError', 'An internal error has occurred', 500, 'server'), 'CreateRoute', 'rtb-1') as CloudError).retryable, true)
  assert.ok(isWeftError(toCloudError(sdkError('AuthFailure', 'AWS was not able to validate the provided access credentials', 401), 'DescribeInstances', 'i-1'), 'CLOUD_CREDENTIALS'))
  assert.ok(isWeftError(toCloudError(sdkError('RouteLimitExceeded', 'The maximum number of routes has been reached', 400), 'CreateRoute', 'rtb-1'), 'CLOUD_ROUTE_LIMIT'))
})

test('connection failures are retryable CloudErrors named by errno', () => {
  const err = toCloudError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'DescribeInstances', 'i-1') as CloudError
  assert.equal(err.cloudCode, 'ECONNREFUSED')
  assert.equal(err.retryable, true)
})

test('a missing credential chain becomes CLOUD_CREDENTIALS with a hint', () => {
  const err = toCloudError(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), 'DescribeInstances', 'i-1')
  assert.ok(isWeftError(err, 'CLOUD_CREDENTIALS'))
  assert.match(err.message, /^aws credentials not found .*; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, use a shared profile \(AWS_PROFILE\), or attach an IAM instance role allowing ec2:DescribeInstances/)
})

test('IMDS endpoint: the SDK variable, IPv6 mode, else the link-local default', () => {
  assert.equal(imdsEndpointFromEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9999/' }), 'http://127.0.0.1:9999')
  assert.equal(imdsEndpointFromEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: 'IPv6' }), 'http://[fd00:ec2::254]')
  assert.equal(imdsEndpointFromEnv({}), 'http://169.254.169.254')
})
