import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseAliVpcOptions, resolveAliCredentials } from '../../../../src/backend/ali-vpc/ali-vpc-options.ts'
import { ConfigError, isWeftError } from '../../../../src/errors.ts'

test('keys are matched case-insensitively (already lower-cased) and endpoints normalised', () => {
  assert.deepEqual(parseAliVpcOptions({ accesskeyid: 'id', accesskeysecret: 's', vpcendpoint: 'https://vpc.example.com/' }), {
    accessKeyID: 'id', accessKeySecret: 's', vpcEndpoint: 'https://vpc.example.com', metadataEndpoint: undefined,
  })
  assert.deepEqual(parseAliVpcOptions({}), { accessKeyID: undefined, accessKeySecret: undefined, vpcEndpoint: undefined, metadataEndpoint: undefined })
})

test('errors name Backend.<Field> and the rule', () => {
  assert.throws(() => parseAliVpcOptions({ accesskeyid: 'id' }), (e: unknown) => e instanceof ConfigError && e.field === 'Backend.AccessKeySecret' && /is required when Backend\.AccessKeyID is set/.test(e.message))
  assert.throws(() => parseAliVpcOptions({ accesskeyid: 5, accesskeysecret: 's' }), /Backend\.AccessKeyID: must be a string, got number/)
  assert.throws(() => parseAliVpcOptions({ accesskey: 'x' }), /Backend: unknown key "accesskey"; expected one of Type, AccessKeyID, AccessKeySecret, VpcEndpoint, MetadataEndpoint/)
  assert.throws(() => parseAliVpcOptions({ metadataendpoint: 'not a url' }), /Backend\.MetadataEndpoint: must be an http:\/\/ or https:\/\/ URL/)
})

test('credentials: options win, then ACCESS_KEY_ID/ACCESS_KEY_SECRET, else CLOUD_CREDENTIALS', () => {
  assert.deepEqual(resolveAliCredentials({ accessKeyID: 'a', accessKeySecret: 'b' }, { ACCESS_KEY_ID: 'x', ACCESS_KEY_SECRET: 'y' }), { accessKeyId: 'a', accessKeySecret: 'b' })
  assert.deepEqual(resolveAliCredentials({}, { ACCESS_KEY_ID: 'x', ACCESS_KEY_SECRET: 'y' }), { accessKeyId: 'x', accessKeySecret: 'y' })
  assert.throws(() => resolveAliCredentials({}, {}), (e: unknown) => isWeftError(e, 'CLOUD_CREDENTIALS') && /^alibaba credentials are not set; set Backend\.AccessKeyID/.test((e as Error).message))
  assert.throws(() => resolveAliCredentials({}, { ACCESS_KEY_ID: 'x' }), /alibaba credentials are incomplete \(ACCESS_KEY_SECRET is empty\)/)
})
