import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_BACKEND, UsageError, demoNetworkConfig, parseDemoArgs } from '../../../demo/demo-args.ts'

test('defaults: vxlan backend, 3 hosts, stays up', () => {
  const a = parseDemoArgs([])
  assert.equal(a.backend, DEFAULT_BACKEND)
  assert.equal(a.backend, 'vxlan')
  assert.deepEqual([a.once, a.hosts, a.ipv6, a.verbosity, a.timeoutSec, a.showLogs, a.help], [false, 3, false, 0, 30, false, false])
})

test('flags in --k=v, --k v and boolean forms', () => {
  const a = parseDemoArgs(['--backend', 'host-gw', '--once', '--hosts=5', '--ipv6', '--v=2', '--logs', '--timeout', '9', '--weftd=/x/weftd'])
  assert.deepEqual([a.backend, a.once, a.hosts, a.ipv6, a.verbosity, a.showLogs, a.timeoutSec, a.weftd], ['host-gw', true, 5, true, 2, true, 9, '/x/weftd'])
  assert.equal(parseDemoArgs(['--once=false']).once, false)
  assert.equal(parseDemoArgs(['-h']).help, true)
})

test('usage errors name the flag and the rule', () => {
  assert.throws(() => parseDemoArgs(['--hosts=0']), (e: unknown) => e instanceof UsageError && e.message === '--hosts must be an integer in 1..9: 0')
  assert.throws(() => parseDemoArgs(['--hosts']), /--hosts must be an integer in 1\.\.9: \(missing\)/)
  assert.throws(() => parseDemoArgs(['--backend=Bad Type']), /--backend must be a backend type/)
  assert.throws(() => parseDemoArgs(['--frobnicate']), /unknown flag --frobnicate/)
  assert.throws(() => parseDemoArgs(['vxlan']), /unexpected argument: vxlan/)
})

test('network config: flannel JSON, dual-stack only with --ipv6', () => {
  assert.deepEqual(demoNetworkConfig({ backend: 'vxlan', ipv6: false }), { Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } })
  assert.deepEqual(demoNetworkConfig({ backend: 'alloc', ipv6: true }), { Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:5::/48', Backend: { Type: 'alloc' } })
})
