import { test } from 'node:test'
import assert from 'node:assert/strict'
import { annotationNames, normalizeAnnotationPrefix } from '../../../../src/subnet/kube/annotations.ts'
import { isWeftError } from '../../../../src/errors.ts'

test('prefix normalisation follows flannel: slash appended, dash before a suffix', () => {
  assert.equal(normalizeAnnotationPrefix('flannel.alpha.coreos.com'), 'flannel.alpha.coreos.com/')
  assert.equal(normalizeAnnotationPrefix('org.com/9'), 'org.com/9-')
  assert.equal(normalizeAnnotationPrefix('org.com/x-'), 'org.com/x-')
  assert.equal(annotationNames('org.com/9').backendType, 'org.com/9-backend-type')
  assert.equal(annotationNames('flannel.alpha.coreos.com').publicIpOverwrite, 'flannel.alpha.coreos.com/public-ip-overwrite')
})

test('prefixes flannel rejects are refused with the flag and the rule', () => {
  for (const [bad, rule] of [['org', /fqdn/], ['org.COM', /fqdn/], ['a.b/c/d', /at most single slash/], ['Foo.example.com', /fqdn/]] as const) {
    assert.throws(() => normalizeAnnotationPrefix(bad), (err: unknown) => {
      assert.ok(isWeftError(err, 'USAGE'), String(err))
      assert.match(err.message, /^--kube-annotation-prefix: /)
      assert.match(err.message, rule)
      return true
    }, bad)
  }
})
