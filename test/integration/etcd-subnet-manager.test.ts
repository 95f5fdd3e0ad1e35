/**
 * EtcdSubnetManager on a real etcd: concurrent allocation, restarts, compaction during a
 * watch, garbage keys, and byte compatibility with flannel's stored values.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { etcdSkipReason, startEtcd, type EtcdServer } from '../helpers/etcd-server.ts'
import { EtcdRegistry } from '../../src/subnet/etcd/etcd-registry.ts'
import { EtcdSubnetManager } from '../../src/subnet/etcd/etcd-subnet-manager.ts'
import { MemoryLogger, silentLogger } from '../../src/log/logger.ts'
import { systemClock } from '../../src/util/clock.ts'
import { formatCidr, formatIp, netOverlaps, type IpNet } from '../../src/ip/ip.ts'
import { parseNetworkConfig } from '../../src/config/parse-network-config.ts'
import { backendRegistry } from '../../src/backend/registry.ts'
import type { Lease, LeaseWatchResult } from '../../src/lease/lease.ts'
import { WeftError } from '../../src/errors.ts'
import type { Registry, RegistryWatchBatch } from '../../src/subnet/etcd/registry.ts'
import { ip, testParseConfig } from '../unit/subnet/etcd/fixtures.ts'

const skip = etcdSkipReason()

let etcd: EtcdServer
const signal = new AbortController().signal
const etcdctl = (...args: string[]): string =>
  execFileSync('etcdctl', [`--endpoints=${etcd.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' })
const registries: EtcdRegistry[] = []
function manager(prefix: string, extra: { previousSubnet?: { ipv4?: IpNet }; registry?: Registry; logger?: MemoryLogger } = {}): EtcdSubnetManager {
  const registry = extra.registry ?? new EtcdRegistry({ endpoints: [etcd.endpoint], logger: silentLogger })
  if (registry instanceof EtcdRegistry) registries.push(registry)
  return new EtcdSubnetManager({
    registry, prefix, logger: extra.logger ?? silentLogger, clock: systemClock, parseConfig: testParseConfig,
    ...(extra.previousSubnet ? { previousSubnet: extra.previousSubnet } : {}),
  })
}
const attrs = (pub: string) => ({ publicIP: ip(pub), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' } })

before(async () => {
  if (skip) return
  etcd = await startEtcd()
})
after(async () => {
  for (const r of registries) await r.close()
  await etcd?.destroy()
})

test('20 allocators at once on one etcd get 20 distinct, non-overlapping subnets', { skip }, async (t) => {
  const P = '/race/network'
  etcdctl('put', `${P}/config`, '{"Network":"10.5.0.0/16"}')
  const logger = new MemoryLogger()
  const managers = Array.from({ length: 20 }, () => manager(P, { logger }))
  const config = await managers[0]!.getNetworkConfig(signal)
  const leases = await Promise.all(managers.map((m, i) => m.acquireLease(config, attrs(`192.168.0.${i + 1}`), signal)))
  const subnets = leases.map((l) => l.subnet!)
  for (let i = 0; i < subnets.length; i++) {
    for (let j = i + 1; j < subnets.length; j++) assert.ok(!netOverlaps(subnets[i]!, subnets[j]!), `${formatCidr(subnets[i]!)} vs ${formatCidr(subnets[j]!)}`)
  }
  const stored = etcdctl('get', '--prefix', '--keys-only', `${P}/subnets/`).split('\n').filter((l) => l !== '')
  assert.equal(stored.length, 20)
  t.diagnostic(`lost creation races retried: ${logger.find('subnet taken by another host meanwhile; retrying').length}`)
})

test('the real config parser reads the stored config', { skip }, async () => {
  const P = '/parser/network'
  etcdctl('put', `${P}/config`, '{"Network":"10.7.0.0/16","Backend":{"Type":"vxlan"}}')
  const sm = new EtcdSubnetManager({
    registry: new EtcdRegistry({ endpoints: [etcd.endpoint], logger: silentLogger }), prefix: P, logger: silentLogger, clock: systemClock,
    parseConfig: (json) => parseNetworkConfig(json, backendRegistry).config,
  })
  try {
    const config = await sm.getNetworkConfig(signal)
    assert.equal(formatCidr(config.ipv4!.network), '10.7.0.0/16')
    assert.equal(config.backend.type, 'vxlan')
  } finally {
    await sm.close()
  }
})

test('restart keeps the subnet: by public IP, and by previous subnet when the key was deleted', { skip }, async () => {
  const P = '/restart/network'
  etcdctl('put', `${P}/config`, '{"Network":"10.6.0.0/16"}')
  const first = await manager(P).acquireLease(testParseConfig('{"Network":"10.6.0.0/16"}'), attrs('172.16.0.1'), signal)
  const again = await manager(P).acquireLease(testParseConfig('{"Network":"10.6.0.0/16"}'), attrs('172.16.0.1'), signal)
  assert.equal(formatCidr(again.subnet!), formatCidr(first.subnet!))
  const key = formatCidr(first.subnet!).replace('/', '-')
  etcdctl('del', `${P}/subnets/${key}`)
  const third = await manager(P, { previousSubnet: { ipv4: first.subnet! } }).acquireLease(testParseConfig('{"Network":"10.6.0.0/16"}'), attrs('172.16.0.99'), signal)
  assert.equal(formatCidr(third.subnet!), formatCidr(first.subnet!))
})

test('flannel-written values parse, and weft writes byte-identical values', { skip }, async () => {
  const P = '/compat/network'
  const flannelValue = '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}'
  etcdctl('put', `${P}/config`, '{"Network":"10.8.0.0/16"}')
  etcdctl('put', `${P}/subnets/10.8.77.0-24`, flannelValue)
  const sm = manager(P)
  const ac = new AbortController()
  const it = sm.watchLeases(undefined, ac.signal)[Symbol.asyncIterator]()
  const snap = (await it.next()).value as LeaseWatchResult
  ac.abort()
  assert.equal(snap.kind, 'snapshot')
  const lease = (snap as { leases: readonly Lease[] }).leases[0]!
  assert.equal(formatIp(lease.attrs.publicIP!), '192.168.64.3')
  assert.deepEqual(lease.attrs.backendData, { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' })
  // re-acquire as that host: weft rewrites the key, byte for byte what flannel wrote
  const mine = await sm.acquireLease(testParseConfig('{"Network":"10.8.0.0/16"}'), attrs('192.168.64.3'), signal)
  assert.equal(formatCidr(mine.subnet!), '10.8.77.0/24')
  assert.equal(etcdctl('get', '--print-value-only', `${P}/subnets/10.8.77.0-24`), flannelValue + '\n')
  const fresh = await manager(P).acquireLease(testParseConfig('{"Network":"10.8.0.0/16"}'), { publicIP: ip('1.2.3.4'), backendType: '' }, signal)
  assert.equal(etcdctl('get', '--print-value-only', `${P}/subnets/${formatCidr(fresh.subnet!).replace('/', '-')}`), '{"PublicIP":"1.2.3.4","PublicIPv6":null}\n')
})

test('garbage keys and values under subnets/ are skipped by acquire and watch', { skip }, async () => {
  const P = '/garbage/network'
  etcdctl('put', `${P}/config`, '{"Network":"10.9.0.0/16"}')
  etcdctl('put', `${P}/subnets/hello`, 'world')
  etcdctl('put', `${P}/subnets/10.9.1.0-24`, '{not json')
  const logger = new MemoryLogger()
  const sm = manager(P, { logger })
  const own = await sm.acquireLease(testParseConfig('{"Network":"10.9.0.0/16"}'), attrs('10.0.0.1'), signal)
  assert.notEqual(formatCidr(own.subnet!), '10.9.1.0/24')
  const ac = new AbortController()
  const it = sm.watchLeases(own, ac.signal)[Symbol.asyncIterator]()
  assert.deepEqual((await it.next()).value, { kind: 'snapshot', leases: [] })
  etcdctl('put', `${P}/subnets/10.9.2.0-24&zz`, 'x')
  etcdctl('put', `${P}/subnets/10.9.3.0-24`, '{"PublicIP":"10.0.0.3","PublicIPv6":null}')
  const r = (await it.next()).value as LeaseWatchResult
  ac.abort()
  assert.deepEqual(r.kind === 'events' ? r.events.map((e) => `${e.type} ${formatCidr(e.lease.subnet!)}`) : r, ['added 10.9.3.0/24'])
  assert.deepEqual(logger.find('skipping malformed subnet key').map((e) => e.fields['key']), ['10.9.1.0-24', 'hello', '10.9.2.0-24&zz']) // listed in key order
})

/** Wraps a registry so the test can cut the live watch and hold the reconnect. */
function gatedRegistry(inner: Registry) {
  let cut: (() => void) | undefined
  let gate: Promise<void> = Promise.resolve()
  let open: () => void = () => {}
  const proxy: Registry = Object.create(inner) as Registry
  proxy.watchSubnets = (prefix, from, sig) => ({
    async *[Symbol.asyncIterator](): AsyncGenerator<RegistryWatchBatch> {
      await gate
      const killed = new Promise<never>((_, reject) => { cut = () => reject(new WeftError('REGISTRY_UNAVAILABLE', 'cut by test')) })
      const it = inner.watchSubnets(prefix, from, sig)[Symbol.asyncIterator]()
      try {
        for (;;) {
          const r = await Promise.race([it.next(), killed])
          if (r.done) return
          yield r.value
        }
      } finally {
        await it.return?.()
      }
    },
  })
  return {
    registry: proxy,
    disconnectAndHold: () => {
      gate = new Promise((r) => { open = r })
      cut?.()
    },
    release: () => open(),
  }
}

test('compaction while the watch is away: re-listed as a snapshot that includes the changes', { skip }, async () => {
  const P = '/compact/network'
  etcdctl('put', `${P}/config`, '{"Network":"10.10.0.0/16"}')
  etcdctl('put', `${P}/subnets/10.10.1.0-24`, '{"PublicIP":"10.0.1.1","PublicIPv6":null}')
  const inner = new EtcdRegistry({ endpoints: [etcd.endpoint], logger: silentLogger })
  registries.push(inner)
  const gated = gatedRegistry(inner)
  const logger = new MemoryLogger()
  const sm = manager(P, { registry: gated.registry, logger })
  const ac = new AbortController()
  const it = sm.watchLeases(undefined, ac.signal)[Symbol.asyncIterator]()
  assert.equal((await it.next()).value.kind, 'snapshot')
  const pending = it.next()
  await new Promise((r) => setTimeout(r, 100))
  gated.disconnectAndHold()
  etcdctl('put', `${P}/subnets/10.10.2.0-24`, '{"PublicIP":"10.0.1.2","PublicIPv6":null}')
  etcdctl('del', `${P}/subnets/10.10.1.0-24`)
  await etcd.compact()
  gated.release()
  const r = (await pending).value as LeaseWatchResult
  ac.abort()
  assert.deepEqual(r.kind === 'snapshot' ? r.leases.map((l) => formatCidr(l.subnet!)) : r, ['10.10.2.0/24'])
  assert.equal(logger.find('watch revision compacted; re-listing leases').length, 1)
})

test('dual-stack lease: key with both subnets, IPv6 attrs stored as flannel writes them', { skip }, async () => {
  const P = '/dual/network'
  const json = '{"Network":"10.11.0.0/16","IPv6Network":"fd00:11::/48"}'
  etcdctl('put', `${P}/config`, json)
  const sm = manager(P)
  const lease = await sm.acquireLease(testParseConfig(json), { publicIP: ip('10.0.0.5'), publicIPv6: ip('fd00::5'), backendType: 'host-gw' }, signal)
  const key = `${formatCidr(lease.subnet!).replace('/', '-')}&${formatCidr(lease.ipv6Subnet!).replace('/', '-')}`
  assert.match(key, /^10\.11\.\d+\.0-24&fd00:11:0:[0-9a-f]+::-64$/)
  assert.equal(etcdctl('get', '--print-value-only', `${P}/subnets/${key}`), '{"PublicIP":"10.0.0.5","PublicIPv6":"fd00::5","BackendType":"host-gw"}\n')
  const again = await manager(P).acquireLease(testParseConfig(json), { publicIP: ip('10.0.0.5'), publicIPv6: ip('fd00::5'), backendType: 'host-gw' }, signal)
  assert.equal(formatCidr(again.ipv6Subnet!), formatCidr(lease.ipv6Subnet!))
})
