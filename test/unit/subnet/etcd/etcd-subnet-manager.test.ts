import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EtcdSubnetManager } from '../../../../src/subnet/etcd/etcd-subnet-manager.ts'
import { MemoryRegistry } from '../../../../src/subnet/etcd/memory-registry.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { formatCidr, netOverlaps, type IpNet } from '../../../../src/ip/ip.ts'
import type { LeaseAttrs } from '../../../../src/lease/lease.ts'
import { ip, net, testParseConfig, until } from './fixtures.ts'

const P = '/coreos.com/network'
const CONFIG = '{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.25.0"}'
const signal = new AbortController().signal
const attrs = (pub: string, extra: Partial<LeaseAttrs> = {}): LeaseAttrs => ({ publicIP: ip(pub), backendType: 'vxlan', backendData: { VNI: 1 }, ...extra })
const value = (pub: string): string => `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1}}`

function setup(opts: { previous?: { ipv4?: IpNet; ipv6?: IpNet }; config?: string } = {}) {
  const clock = new FakeClock()
  const registry = new MemoryRegistry({ clock })
  const logger = new MemoryLogger()
  registry.rawPut(`${P}/config`, opts.config ?? CONFIG)
  for (const [s, pub] of [['10.3.1.0-24', '1.1.1.1'], ['10.3.2.0-24', '1.1.1.2'], ['10.3.4.0-24', '1.1.1.4'], ['10.3.5.0-24', '1.1.1.5'], ['10.3.31.0-24', '1.1.1.31']]) {
    registry.rawPut(`${P}/subnets/${s}`, value(pub as string), 86400)
  }
  const sm = new EtcdSubnetManager({
    registry, prefix: P, logger, clock, parseConfig: testParseConfig, random: () => 0,
    ...(opts.previous ? { previousSubnet: opts.previous } : {}),
  })
  return { clock, registry, logger, sm }
}

test('getNetworkConfig: missing key is CONFIG_NOT_FOUND with flannel hint', async () => {
  const clock = new FakeClock()
  const sm = new EtcdSubnetManager({ registry: new MemoryRegistry({ clock }), prefix: P, logger: new MemoryLogger(), clock, parseConfig: testParseConfig })
  await assert.rejects(sm.getNetworkConfig(signal), (err: unknown) => {
    assert.ok(isWeftError(err, 'CONFIG_NOT_FOUND'))
    assert.match(err.message, /Did you create your config using etcdv3 API\?/)
    return true
  })
})

test('getNetworkConfig parses the stored config', async () => {
  const { sm } = setup()
  const config = await sm.getNetworkConfig(signal)
  assert.equal(formatCidr(config.ipv4!.network), '10.3.0.0/16')
})

test('a new lease lands in range, free, and is stored in flannel format with a 24 h TTL', async () => {
  const { sm, registry, clock } = setup()
  const config = await sm.getNetworkConfig(signal)
  const lease = await sm.acquireLease(config, attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.3.0/24')
  assert.equal(lease.expiration, clock.now() + 86_400_000)
  const rec = await registry.getSubnet(P, '10.3.3.0-24', signal)
  assert.equal(rec!.value, value('5.5.5.5'))
  assert.equal(rec!.ttlSeconds, 86400)
})

test('random choice among free subnets never overlaps existing ones', async () => {
  for (const r of [0.1, 0.5, 0.99]) {
    const { registry, clock } = setup()
    const sm = new EtcdSubnetManager({ registry, prefix: P, logger: new MemoryLogger(), clock, parseConfig: testParseConfig, random: () => r })
    const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
    const taken = ['10.3.1.0/24', '10.3.2.0/24', '10.3.4.0/24', '10.3.5.0/24'].map(net)
    assert.ok(!taken.some((t) => netOverlaps(t, lease.subnet!)), formatCidr(lease.subnet!))
    assert.ok(lease.subnet!.addr >= net('10.3.1.0/24').addr && lease.subnet!.addr <= net('10.3.25.0/24').addr)
  }
})

test('re-acquire with the same public IP reuses the subnet and rewrites attrs', async () => {
  const { sm, registry } = setup()
  const config = await sm.getNetworkConfig(signal)
  const lease = await sm.acquireLease(config, attrs('1.1.1.4', { backendData: { VNI: 7 } }), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.4.0/24')
  assert.equal(registry.calls['createSubnet'], undefined)
  assert.equal((await registry.getSubnet(P, '10.3.4.0-24', signal))!.value, '{"PublicIP":"1.1.1.4","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":7}}')
})

test('an incompatible lease of ours (out of range) is deleted and a new one allocated', async () => {
  const { sm, registry } = setup()
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('1.1.1.31'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.3.0/24')
  assert.equal(await registry.getSubnet(P, '10.3.31.0-24', signal), undefined)
})

test('previous subnet from subnet.env is reused when free and in range', async () => {
  const { sm } = setup({ previous: { ipv4: net('10.3.6.0/24') } })
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.6.0/24')
})

test('previous subnet outside the network is not reused', async () => {
  const { sm, logger } = setup({ previous: { ipv4: net('10.4.1.0/24') } })
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.3.0/24')
  assert.equal(logger.find('previous subnet is outside the configured range; ignoring').length, 1)
})

test('previous subnet taken by another host is not reused', async () => {
  const { sm } = setup({ previous: { ipv4: net('10.3.2.0/24') } })
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.3.0/24')
})

test('after a config change the lease moves to the new range', async () => {
  const { sm, registry } = setup()
  const first = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(first.subnet!), '10.3.3.0/24')
  await registry.putConfig(P, '{"Network":"10.4.0.0/16"}', signal)
  const second = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(second.subnet!), '10.4.1.0/24')
  assert.equal(await registry.getSubnet(P, '10.3.3.0-24', signal), undefined)
})

test('dual-stack: IPv6 subnet allocated too and in the key', async () => {
  const { sm, registry } = setup({ config: '{"Network":"10.3.0.0/16","IPv6Network":"fd00:3::/48"}' })
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5', { publicIPv6: ip('fd00::5') }), signal)
  assert.equal(formatCidr(lease.ipv6Subnet!), 'fd00:3:0:1::/64')
  assert.ok(await registry.getSubnet(P, `10.3.3.0-24&fd00:3:0:1::-64`, signal))
})

test('renew extends the TTL to 24 h from now and keeps the value', async () => {
  const { sm, registry, clock } = setup()
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  await clock.advance(3600_000)
  assert.equal((await registry.getSubnet(P, '10.3.3.0-24', signal))!.ttlSeconds, 82800)
  const renewed = await sm.renewLease(lease, signal)
  assert.equal(renewed.expiration, clock.now() + 86_400_000)
  const rec = await registry.getSubnet(P, '10.3.3.0-24', signal)
  assert.equal(rec!.ttlSeconds, 86400)
  assert.equal(rec!.value, value('5.5.5.5'))
})

test('out of subnets names the range', async () => {
  const { sm } = setup({ config: '{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.2.0"}' })
  await assert.rejects(sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal), (err: unknown) => {
    assert.ok(isWeftError(err, 'LEASE_NO_FREE_SUBNET'))
    assert.equal(err.message, 'out of subnets: no free /24 in 10.3.1.0-10.3.2.0')
    return true
  })
})

test('a lost creation race is retried with a fresh listing', async () => {
  const { sm, registry } = setup()
  let stolen = 0
  registry.beforeCreate = (key) => {
    if (stolen < 2) {
      stolen++
      registry.rawPut(key, value(`9.9.9.${stolen}`), 60)
    }
  }
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(stolen, 2)
  assert.equal(formatCidr(lease.subnet!), '10.3.7.0/24') // 3 and 6 were taken by the racers
  assert.equal(registry.calls['listSubnets'], 3)
})

test('losing the race 10 times fails with LEASE_CONFLICT', async () => {
  const { sm, registry } = setup()
  registry.beforeCreate = (key) => registry.rawPut(key, value('9.9.9.9'), 60)
  await assert.rejects(sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal), (err: unknown) => {
    assert.ok(isWeftError(err, 'LEASE_CONFLICT'))
    assert.match(err.message, /failed to acquire lease/)
    return true
  })
  assert.equal(registry.calls['createSubnet'], 10)
})

test('a reservation (key without TTL) is reused and stays a reservation', async () => {
  const { sm, registry, clock } = setup()
  registry.rawPut(`${P}/subnets/10.3.9.0-24`, '{"PublicIP":"5.5.5.5","PublicIPv6":null}')
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.9.0/24')
  assert.equal(lease.expiration, undefined)
  let rec = await registry.getSubnet(P, '10.3.9.0-24', signal)
  assert.equal(rec!.leaseId, '0')
  assert.equal(rec!.value, value('5.5.5.5'))
  const renewed = await sm.renewLease(lease, signal)
  assert.equal(renewed.expiration, undefined)
  await clock.advance(200_000_000)
  rec = await registry.getSubnet(P, '10.3.9.0-24', signal)
  assert.equal(rec!.leaseId, '0')
})

test('a reservation of another host is never allocated to us', async () => {
  const { sm, registry } = setup({ config: '{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.3.0"}' })
  registry.rawPut(`${P}/subnets/10.3.3.0-24`, '{"PublicIP":"7.7.7.7","PublicIPv6":null}')
  await assert.rejects(sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal), (err: unknown) => isWeftError(err, 'LEASE_NO_FREE_SUBNET'))
})

test('subnets held by keys with garbage values are still taken', async () => {
  const { sm, registry, logger } = setup()
  registry.rawPut(`${P}/subnets/10.3.3.0-24`, 'garbage')
  registry.rawPut(`${P}/subnets/not-a-subnet`, 'x')
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.6.0/24')
  assert.equal(logger.find('skipping malformed subnet key').length, 2)
})

test('unavailable registry surfaces REGISTRY_UNAVAILABLE', async () => {
  const { sm, registry } = setup()
  const config = await sm.getNetworkConfig(signal)
  registry.unavailable = true
  await assert.rejects(sm.acquireLease(config, attrs('5.5.5.5'), signal), (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE'))
})

test('listLeases: valid leases only; expirations on request, none for reservations', async () => {
  const { sm, registry, clock } = setup()
  registry.rawPut(`${P}/subnets/10.3.9.0-24`, value('9.9.9.9'))
  registry.rawPut(`${P}/subnets/junk`, 'x')
  const plain = await sm.listLeases(signal)
  assert.equal(plain.length, 6)
  assert.ok(plain.every((l) => l.expiration === undefined))
  assert.equal(registry.calls['getSubnet'], undefined)
  await clock.advance(1000)
  const timed = await sm.listLeases(signal, { withExpiration: true })
  const byKey = new Map(timed.map((l) => [formatCidr(l.subnet!), l.expiration]))
  assert.equal(byKey.get('10.3.1.0/24'), clock.now() + 86_399_000)
  assert.equal(byKey.get('10.3.9.0/24'), undefined)
})

test('the TTL grant overlaps the listing and is never leaked: used on create, revoked on reuse', async () => {
  const { sm, registry } = setup()
  const config = await sm.getNetworkConfig(signal)
  const before = registry.liveLeases // the five fixture leases
  const created = await sm.acquireLease(config, attrs('9.9.9.9'), signal)
  assert.equal(registry.liveLeases, before + 1, 'the pre-granted lease now carries our key')
  assert.equal(registry.calls.grantLease, 1)
  const reused = await sm.acquireLease(config, attrs('9.9.9.9'), signal)
  assert.equal(formatCidr(reused.subnet!), formatCidr(created.subnet!))
  // reuse rewrites the key with a fresh lease; the speculative grant of this attempt is revoked
  assert.equal(registry.liveLeases, before + 1)
})

test('a grant made for a lost creation race is revoked with it', async () => {
  const { sm, registry } = setup()
  const config = await sm.getNetworkConfig(signal)
  const before = registry.liveLeases
  let raced = false
  registry.beforeCreate = (full) => {
    if (!raced) { raced = true; registry.rawPut(full, value('7.7.7.7'), 86400) }
  }
  await sm.acquireLease(config, attrs('9.9.9.9'), signal)
  assert.equal(registry.liveLeases, before + 2, 'the winner\'s lease and ours, nothing leaked from the lost attempt')
})

/** Counts the registry calls the manager makes; `failing` methods reject once. */
function counting(registry: MemoryRegistry, failing: readonly string[] = []) {
  const calls: Record<string, number> = {}
  const failOnce = new Set(failing)
  const proxy = new Proxy(registry, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1
        if (failOnce.delete(String(prop))) return Promise.reject(new Error(`${String(prop)}: store unreachable`))
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { proxy, calls }
}

/** setup() behind a call-counting registry, and a manager over it. */
function countingSetup(failing: readonly string[] = []) {
  const { registry, clock } = setup()
  const { proxy, calls } = counting(registry, failing)
  const sm = new EtcdSubnetManager({ registry: proxy, prefix: P, logger: new MemoryLogger(), clock, parseConfig: testParseConfig, random: () => 0 })
  return { registry, clock, calls, sm }
}

test('prefetch: config, listing and grant are sent once, up front, and used by the first acquisition', async () => {
  const { registry, calls, sm } = countingSetup()
  sm.prefetch(signal)
  assert.deepEqual(calls, { getConfig: 1, listSubnets: 1, grantLease: 1 }, 'all three before anything awaits')
  const config = await sm.getNetworkConfig(signal)
  const lease = await sm.acquireLease(config, attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.3.0/24')
  assert.deepEqual(calls, { getConfig: 1, listSubnets: 1, grantLease: 1, createSubnet: 1 })
  const rec = await registry.getSubnet(P, '10.3.3.0-24', signal)
  assert.equal(rec!.ttlSeconds, 86400, 'the prefetched grant carries the 24 h TTL')
})

test('prefetch: a failed early listing or grant is simply made again', async () => {
  const { calls, sm } = countingSetup(['listSubnets', 'grantLease'])
  sm.prefetch(signal)
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.3.0/24')
  assert.equal(calls['listSubnets'], 2)
  assert.equal(calls['grantLease'], 2)
})

test('prefetch: a listing older than 2 s is not used, and its grant is released', async () => {
  const { registry, clock, calls, sm } = countingSetup()
  sm.prefetch(signal)
  const config = await sm.getNetworkConfig(signal)
  // Meanwhile another host takes the subnet the early listing would have picked.
  registry.rawPut(`${P}/subnets/10.3.3.0-24`, value('9.9.9.9'), 86400)
  await clock.advance(2001)
  const lease = await sm.acquireLease(config, attrs('5.5.5.5'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.6.0/24', 'chosen from a fresh listing')
  assert.equal(calls['listSubnets'], 2)
  await until(() => calls['releaseLease'] === 1)
})

test('close releases a prefetched grant that was never used', async () => {
  const { calls, sm } = countingSetup()
  sm.prefetch(signal)
  await sm.close()
  assert.equal(calls['releaseLease'], 1)
})

test('prefetch: listLeases at start-up (vxlan finding its previous MAC) is served from the early listing', async () => {
  const { calls, sm } = countingSetup()
  sm.prefetch(signal)
  const leases = await sm.listLeases(signal)
  assert.equal(leases.length, 5)
  await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('5.5.5.5'), signal)
  assert.equal(calls['listSubnets'], 1, 'one listing served both')
})

test('prefetch: a restart reusing its lease by PublicIP moves it to the prefetched grant in one write', async () => {
  const { registry, calls, sm } = countingSetup()
  sm.prefetch(signal)
  const lease = await sm.acquireLease(await sm.getNetworkConfig(signal), attrs('1.1.1.2'), signal)
  assert.equal(formatCidr(lease.subnet!), '10.3.2.0/24', 'kept its subnet')
  assert.deepEqual(calls, { getConfig: 1, listSubnets: 1, grantLease: 1, updateSubnet: 1 }, 'no second grant, and the grant is not released')
  const rec = await registry.getSubnet(P, '10.3.2.0-24', signal)
  assert.equal(rec!.value, value('1.1.1.2'))
  assert.equal(rec!.ttlSeconds, 86400)
})
