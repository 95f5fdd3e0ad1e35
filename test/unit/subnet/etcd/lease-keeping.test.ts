/**
 * The daemon's lease keeper (src/daemon/lease-renewer.ts) driving EtcdSubnetManager over a
 * MemoryRegistry: renewal 23 h after acquire, the own-lease watch following it, and revocation.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { keepLease } from '../../../../src/daemon/lease-renewer.ts'
import { EtcdSubnetManager } from '../../../../src/subnet/etcd/etcd-subnet-manager.ts'
import { MemoryRegistry } from '../../../../src/subnet/etcd/memory-registry.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { formatCidr } from '../../../../src/ip/ip.ts'
import { ip, testParseConfig, until } from './fixtures.ts'

const P = '/coreos.com/network'

test('lease kept alive: renewed at expiration minus margin, revoked when the key is deleted', async () => {
  const clock = new FakeClock()
  const registry = new MemoryRegistry({ clock })
  registry.rawPut(`${P}/config`, '{"Network":"10.3.0.0/16"}')
  const logger = new MemoryLogger()
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger, clock, parseConfig: testParseConfig })
  const ac = new AbortController()
  const lease = await sm.acquireLease(await sm.getNetworkConfig(ac.signal), { publicIP: ip('5.5.5.5'), backendType: 'vxlan' }, ac.signal)
  const key = formatCidr(lease.subnet!).replace('/', '-')
  const kept = keepLease({ subnetManager: sm, lease, renewMarginMinutes: 60, logger, clock }, ac.signal)
  let outcome: unknown = 'running'
  kept.then(() => { outcome = 'resolved' }, (err) => { outcome = err })

  await until(() => clock.pending >= 2) // renew timer + the registry's wait for the next expiry
  await clock.advance(23 * 3600_000 - 60_000)
  await new Promise((r) => setImmediate(r))
  assert.equal(registry.calls['updateSubnet'], undefined) // not before expiration - margin
  await clock.advance(60_000)
  await until(() => registry.calls['updateSubnet'] === 1)
  await until(() => logger.find('lease renewed').length === 1)
  assert.equal((await registry.getSubnet(P, key, ac.signal))!.ttlSeconds, 86400)
  // two more days: renewed twice more, never expired
  for (let i = 0; i < 2; i++) {
    await until(() => clock.pending >= 2)
    await clock.advance(23 * 3600_000)
    await until(() => registry.calls['updateSubnet'] === i + 2)
  }
  assert.ok(await registry.getSubnet(P, key, ac.signal))
  assert.equal(outcome, 'running')

  registry.rawDelete(`${P}/subnets/${key}`)
  await until(() => outcome !== 'running')
  assert.ok(isWeftError(outcome, 'LEASE_REVOKED'), String(outcome))
  ac.abort()
})
