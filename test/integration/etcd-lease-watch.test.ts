/**
 * Lease watches on a real etcd (flannel pkg/subnet/etcd/subnet_test.go): a short-TTL lease is
 * added then removed on expiry; our own lease is never reported by watchLeases; the own-lease
 * watch reports renewals with the new expiration and a manual delete as removed.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { etcdSkipReason, startEtcd, type EtcdServer } from '../helpers/etcd-server.ts'
import { EtcdRegistry } from '../../src/subnet/etcd/etcd-registry.ts'
import { EtcdSubnetManager } from '../../src/subnet/etcd/etcd-subnet-manager.ts'
import { silentLogger } from '../../src/log/logger.ts'
import { systemClock } from '../../src/util/clock.ts'
import { formatCidr } from '../../src/ip/ip.ts'
import type { LeaseWatchResult } from '../../src/lease/lease.ts'
import { ip, testParseConfig } from '../unit/subnet/etcd/fixtures.ts'

const skip = etcdSkipReason()

const P = '/coreos.com/network'
let etcd: EtcdServer
let registry: EtcdRegistry
const etcdctl = (...args: string[]): string =>
  execFileSync('etcdctl', [`--endpoints=${etcd.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' })

before(async () => {
  if (skip) return
  etcd = await startEtcd()
  registry = new EtcdRegistry({ endpoints: [etcd.endpoint], logger: silentLogger })
  etcdctl('put', `${P}/config`, '{"Network":"10.5.0.0/16"}')
})
after(async () => {
  await registry?.close()
  await etcd?.destroy()
})

function collector(iterable: AsyncIterable<LeaseWatchResult>) {
  const results: LeaseWatchResult[] = []
  let wake: () => void = () => {}
  const done = (async () => {
    for await (const r of iterable) {
      results.push(r)
      wake()
    }
  })()
  const lines = (): string[] =>
    results.flatMap((r) => (r.kind === 'snapshot' ? r.leases.map((l) => `snapshot ${formatCidr(l.subnet!)}`) : r.events.map((e) => `${e.type} ${formatCidr(e.lease.subnet!)}`)))
  const waitFor = async (n: number, ms = 8000): Promise<void> => {
    const deadline = Date.now() + ms
    while (lines().length < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} results: ${JSON.stringify(lines())}`)
      await new Promise<void>((r) => { wake = r; setTimeout(r, 100) })
    }
  }
  return { results, lines, waitFor, done }
}

test('watchLeases: own lease never reported; a 3 s lease is added then removed on expiry', { skip }, async () => {
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger: silentLogger, clock: systemClock, parseConfig: testParseConfig })
  const own = await sm.acquireLease(testParseConfig('{"Network":"10.5.0.0/16"}'), { publicIP: ip('10.0.0.1'), backendType: 'vxlan' }, AbortSignal.timeout(5000))
  const ac = new AbortController()
  const c = collector(sm.watchLeases(own, ac.signal))
  try {
    await c.waitFor(0)
    await new Promise((r) => setTimeout(r, 200))
    assert.deepEqual(c.results, [{ kind: 'snapshot', leases: [] }])
    await sm.renewLease(own, AbortSignal.timeout(5000))
    const lease = etcdctl('lease', 'grant', '3').split(' ')[1] as string
    etcdctl('put', '--lease', lease, `${P}/subnets/10.5.99.0-24`, '{"PublicIP":"10.0.0.99","PublicIPv6":null}')
    // Generous: etcd revokes expired leases on its own schedule, slower on a loaded machine.
    await c.waitFor(2, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}; store now: ${etcdctl('get', '--prefix', `${P}/subnets/`, '--keys-only').trim().replace(/\n+/g, ' ')}`)
    })
    assert.deepEqual(c.lines(), ['added 10.5.99.0/24', 'removed 10.5.99.0/24'])
    const removed = c.results.at(-1)
    assert.equal(removed?.kind === 'events' ? removed.events[0]!.lease.attrs.publicIP?.value : undefined, ip('10.0.0.99').value)
  } finally {
    ac.abort()
    await c.done
  }
})

test('watchLease: snapshot of own lease, added with new expiration on renew, removed on delete', { skip }, async () => {
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger: silentLogger, clock: systemClock, parseConfig: testParseConfig })
  const own = await sm.acquireLease(testParseConfig('{"Network":"10.5.0.0/16"}'), { publicIP: ip('10.0.0.2'), backendType: 'vxlan' }, AbortSignal.timeout(5000))
  const ac = new AbortController()
  const c = collector(sm.watchLease(own, ac.signal))
  try {
    await c.waitFor(1)
    const key = formatCidr(own.subnet!)
    assert.deepEqual(c.lines(), [`snapshot ${key}`])
    await new Promise((r) => setTimeout(r, 1100))
    const renewed = await sm.renewLease(own, AbortSignal.timeout(5000))
    await c.waitFor(2)
    const added = c.results[1]
    assert.equal(added?.kind, 'events')
    const exp = added?.kind === 'events' ? added.events[0]!.lease.expiration! : 0
    assert.ok(Math.abs(exp - renewed.expiration!) < 1500, `${exp} vs ${renewed.expiration}`)
    assert.ok(exp > own.expiration!)
    etcdctl('del', `${P}/subnets/${key.replace('/', '-')}`)
    await c.waitFor(3)
    assert.deepEqual(c.lines().slice(1), [`added ${key}`, `removed ${key}`])
  } finally {
    ac.abort()
    await c.done
  }
})
