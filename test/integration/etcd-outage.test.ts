/**
 * etcd stopped for 30 s and restarted on the same data: the lease watch reconnects (backoff
 * capped at 5 s), resumes from its revision and reports leases created after the restart;
 * renewal fails while etcd is down and works again afterwards. About 35 s.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { etcdSkipReason, startEtcd, type EtcdServer } from '../helpers/etcd-server.ts'
import { EtcdRegistry } from '../../src/subnet/etcd/etcd-registry.ts'
import { EtcdSubnetManager } from '../../src/subnet/etcd/etcd-subnet-manager.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { systemClock } from '../../src/util/clock.ts'
import { formatCidr } from '../../src/ip/ip.ts'
import { isWeftError } from '../../src/errors.ts'
import type { LeaseWatchResult } from '../../src/lease/lease.ts'
import { ip, testParseConfig } from '../unit/subnet/etcd/fixtures.ts'

const skip = etcdSkipReason()

const P = '/coreos.com/network'
let etcd: EtcdServer | undefined
let registry: EtcdRegistry | undefined
after(async () => {
  await registry?.close()
  await etcd?.destroy()
})

test('watch survives a 30 s etcd outage and renew works afterwards', { skip, timeout: 60_000 }, async (t) => {
  etcd = await startEtcd()
  const server = etcd
  const etcdctl = (...args: string[]): string =>
    execFileSync('etcdctl', [`--endpoints=${server.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' })
  etcdctl('put', `${P}/config`, '{"Network":"10.5.0.0/16"}')
  registry = new EtcdRegistry({ endpoints: [server.endpoint], logger: new MemoryLogger(), timeoutMs: 1000 })
  const logger = new MemoryLogger()
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger, clock: systemClock, parseConfig: testParseConfig })
  const config = await sm.getNetworkConfig(AbortSignal.timeout(5000))
  const own = await sm.acquireLease(config, { publicIP: ip('10.0.0.1'), backendType: 'vxlan' }, AbortSignal.timeout(5000))
  etcdctl('put', `${P}/subnets/10.5.200.0-24`, '{"PublicIP":"10.0.0.200","PublicIPv6":null}')

  const ac = new AbortController()
  const results: LeaseWatchResult[] = []
  let notify: () => void = () => {}
  const consumer = (async () => {
    for await (const r of sm.watchLeases(own, ac.signal)) {
      results.push(r)
      notify()
    }
  })()
  const waitFor = async (pred: () => boolean, ms: number): Promise<void> => {
    const deadline = Date.now() + ms
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out; results: ${JSON.stringify(results.map(show))}`)
      await new Promise<void>((r) => { notify = r; setTimeout(r, 200) })
    }
  }
  const show = (r: LeaseWatchResult): string[] =>
    r.kind === 'snapshot' ? r.leases.map((l) => `snapshot ${formatCidr(l.subnet!)}`) : r.events.map((e) => `${e.type} ${formatCidr(e.lease.subnet!)}`)
  try {
    await waitFor(() => results.length >= 1, 5000)
    assert.deepEqual(show(results[0]!), ['snapshot 10.5.200.0/24'])

    const stoppedAt = Date.now()
    await server.stop()
    await assert.rejects(sm.renewLease(own, AbortSignal.timeout(5000)), (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE'))
    await new Promise((r) => setTimeout(r, 30_000 - (Date.now() - stoppedAt)))
    await server.start()
    etcdctl('put', `${P}/subnets/10.5.201.0-24`, '{"PublicIP":"10.0.0.201","PublicIPv6":null}')
    etcdctl('del', `${P}/subnets/10.5.200.0-24`)

    // backoff is capped at 5 s, so the watch is back within ~6 s
    await waitFor(() => results.flatMap(show).includes('removed 10.5.200.0/24'), 8000)
    const after = results.slice(1).flatMap(show)
    assert.deepEqual(after, ['added 10.5.201.0/24', 'removed 10.5.200.0/24'])
    const delays = logger.find('lease watch failed; reconnecting').map((e) => Number(e.fields['retryInMs']))
    t.diagnostic(`reconnect attempts: ${delays.length}, delays ms: ${delays.join(',')}`)
    assert.ok(delays.length >= 5 && Math.max(...delays) === 5000, delays.join(','))

    const renewed = await sm.renewLease(own, AbortSignal.timeout(5000))
    assert.ok(renewed.expiration! > own.expiration!)
    const ttl = JSON.parse(etcdctl('get', '-w', 'json', `${P}/subnets/${formatCidr(own.subnet!).replace('/', '-')}`)) as { kvs: Array<{ lease?: number }> }
    assert.ok((ttl.kvs[0]!.lease ?? 0) !== 0)
  } finally {
    ac.abort()
    await consumer
  }
})
