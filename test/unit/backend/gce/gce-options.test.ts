import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseGceOptions } from '../../../../src/backend/gce/gce-options.ts'
import { gceMetadataBase } from '../../../../src/backend/gce/gce-metadata.ts'
import { ConfigError } from '../../../../src/errors.ts'

test('empty section: no overrides', () => {
  assert.deepEqual(parseGceOptions({}), { metadataEndpoint: undefined, computeEndpoint: undefined })
})

test('endpoint overrides are normalised to scheme://host[:port]', () => {
  assert.deepEqual(parseGceOptions({ computeendpoint: 'http://127.0.0.1:8080/', metadataendpoint: 'http://metadata.internal' }), {
    computeEndpoint: 'http://127.0.0.1:8080', metadataEndpoint: 'http://metadata.internal',
  })
})

test('bad values name Backend.<Field> and the rule', () => {
  assert.throws(() => parseGceOptions({ computeendpoint: 'ftp://x' }), (e: unknown) => e instanceof ConfigError && e.field === 'Backend.ComputeEndpoint' && /must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/x"/.test(e.message))
  assert.throws(() => parseGceOptions({ computeendpoint: 'http://x/compute/v1' }), /Backend\.ComputeEndpoint: must be a base URL without a path/)
  assert.throws(() => parseGceOptions({ metadataendpoint: 7 }), /Backend\.MetadataEndpoint: must be a URL string, got number/)
  assert.throws(() => parseGceOptions({ project: 'x' }), /Backend: unknown key "project"; expected one of Type, MetadataEndpoint, ComputeEndpoint/)
})

test('metadata base: option, then GCE_METADATA_HOST, then the link-local default', () => {
  assert.equal(gceMetadataBase('http://a:1', { GCE_METADATA_HOST: 'b:2' }), 'http://a:1')
  assert.equal(gceMetadataBase(undefined, { GCE_METADATA_HOST: 'b:2' }), 'http://b:2')
  assert.equal(gceMetadataBase(undefined, { GCE_METADATA_HOST: 'https://c/' }), 'https://c')
  assert.equal(gceMetadataBase(undefined, {}), 'http://169.254.169.254')
})
