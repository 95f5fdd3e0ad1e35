/**
 * The daemon's lease keeper (src/daemon/lease-renewer.ts) driving EtcdSubnetManager over a
 * MemoryRegistry: renewal 23 h after acquire, the own-lease watch following it, and the key taken
 * back from another writer (overwritten, deleted, garbage) unless our lease had lapsed first.
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

test('lease kept alive: renewed at expiration minus margin, re-created when the key is deleted', async () => {
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
  await untilAsync(async () => (await registry.getSubnet(P, key, ac.signal)) !== undefined)
  const back = (await registry.getSubnet(P, key, ac.signal))!
  assert.match(back.value, /"PublicIP":"5\.5\.5\.5"/)
  assert.equal(back.ttlSeconds, 86400, 're-created with a TTL lease')
  assert.equal(logger.find('own lease key deleted or no longer a lease; re-creating it').length, 1)
  assert.equal(outcome, 'running')
  ac.abort()
  await kept.catch(() => {})
})

async function untilAsync(cond: () => Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setImmediate(r))
  }
}

async function keeping() {
  const clock = new FakeClock()
  const registry = new MemoryRegistry({ clock })
  registry.rawPut(`${P}/config`, '{"Network":"10.3.0.0/16"}')
  const logger = new MemoryLogger()
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger, clock, parseConfig: testParseConfig })
  const ac = new AbortController()
  const lease = await sm.acquireLease(await sm.getNetworkConfig(ac.signal), { publicIP: ip('5.5.5.5'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01' } }, ac.signal)
  const full = `${P}/subnets/${formatCidr(lease.subnet!).replace('/', '-')}`
  const kept = keepLease({ subnetManager: sm, lease, renewMarginMinutes: 60, logger, clock }, ac.signal)
  let outcome: unknown = 'running'
  kept.then(() => { outcome = 'resolved' }, (err) => { outcome = err })
  await until(() => registry.calls['watch'] === 1)
  const value = async () => (await registry.getSubnet(P, full.slice(`${P}/subnets/`.length), ac.signal))?.value ?? ''
  return { clock, registry, logger, ac, full, value, outcome: () => outcome, stop: async () => { ac.abort(); await kept.catch(() => {}) } }
}

test('another writer puts a different PublicIP over our key: ours is written back, both IPs logged', async () => {
  const k = await keeping()
  k.registry.rawPut(k.full, '{"PublicIP":"6.6.6.6","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:99"}}')
  await untilAsync(async () => (await k.value()).includes('5.5.5.5'))
  assert.match(await k.value(), /"VtepMAC":"02:00:00:00:00:01"/)
  const line = k.logger.find('own lease key overwritten by another writer; writing ours back')[0]
  assert.ok(line, 'logged at error level')
  assert.equal(line.fields?.['ourPublicIP'], '5.5.5.5')
  assert.equal(line.fields?.['theirPublicIP'], '6.6.6.6')
  assert.equal(k.outcome(), 'running')
  assert.ok((await k.registry.getSubnet(P, k.full.slice(`${P}/subnets/`.length), k.ac.signal))!.ttlSeconds! > 0, 'a TTL lease again, not the writer\'s bare put')
  await k.stop()
})

test('garbage written over our key is replaced by our lease', async () => {
  const k = await keeping()
  k.registry.rawPut(k.full, 'not json', 3600)
  await untilAsync(async () => (await k.value()).includes('5.5.5.5'))
  assert.equal(k.outcome(), 'running')
  await k.stop()
})

test('a writer that keeps overwriting is answered with growing pauses, not a write storm', async () => {
  const k = await keeping()
  const other = '{"PublicIP":"6.6.6.6","PublicIPv6":null,"BackendType":"vxlan"}'
  for (let i = 0; i < 2; i++) {
    k.registry.rawPut(k.full, other)
    await untilAsync(async () => (await k.value()).includes('5.5.5.5'))
  }
  k.registry.rawPut(k.full, other)
  await until(() => k.logger.find('own lease key overwritten by another writer; writing ours back').length === 3)
  const third = k.logger.find('own lease key overwritten by another writer; writing ours back')[2]!
  assert.equal(third.fields?.['inMs'], 1000)
  assert.match(String(third.fields?.['hint']), /two hosts on one subnet/)
  await new Promise((r) => setImmediate(r))
  assert.match(await k.value(), /6\.6\.6\.6/, 'not yet: the third takeback waits 1 s')
  await until(() => k.clock.pending > 0)
  await k.clock.advance(1000)
  await untilAsync(async () => (await k.value()).includes('5.5.5.5'))
  await k.stop()
})

test('after our lease lapsed, a subnet taken by another host is theirs: LEASE_REVOKED, nothing written', async () => {
  const k = await keeping()
  k.registry.unavailable = true
  await k.clock.advance(25 * 3600_000) // cut off past the TTL: etcd dropped our key
  k.registry.unavailable = false
  k.registry.rawPut(k.full, '{"PublicIP":"6.6.6.6","PublicIPv6":null,"BackendType":"vxlan"}', 86400)
  k.registry.disconnectWatches()
  // The watch may sit in its reconnect backoff (fake time): move time until it is back.
  for (let i = 0; i < 20 && k.outcome() === 'running'; i++) {
    await new Promise((r) => setImmediate(r))
    await k.clock.advance(5000)
  }
  assert.ok(isWeftError(k.outcome(), 'LEASE_REVOKED'), String(k.outcome()))
  assert.match((k.outcome() as Error).message, /now belongs to PublicIP 6\.6\.6\.6/)
  assert.match(await k.value(), /6\.6\.6\.6/)
  await k.stop()
})

test('after our lease lapsed with the subnet still free, the key is re-created', async () => {
  const k = await keeping()
  k.registry.unavailable = true
  await k.clock.advance(25 * 3600_000)
  k.registry.unavailable = false
  for (let i = 0; i < 20 && !(await k.value()).includes('5.5.5.5'); i++) {
    await new Promise((r) => setImmediate(r))
    await k.clock.advance(5000)
  }
  assert.match(await k.value(), /5\.5\.5\.5/)
  assert.equal(k.outcome(), 'running')
  await k.stop()
})
