/**
 * A 3-member etcd cluster on loopback: when the member our watch is connected to loses its
 * leader (the other two stop), the watch is cancelled ("no leader") instead of going silent,
 * calls fail over, and once a quorum is back the watch resumes and sees new leases.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { etcdSkipReason } from '../helpers/etcd-server.ts'
import { EtcdRegistry } from '../../src/subnet/etcd/etcd-registry.ts'
import { EtcdSubnetManager } from '../../src/subnet/etcd/etcd-subnet-manager.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { systemClock } from '../../src/util/clock.ts'
import { errorMessage } from '../../src/errors.ts'
import { formatCidr } from '../../src/ip/ip.ts'
import type { LeaseWatchResult } from '../../src/lease/lease.ts'
import { ip, testParseConfig } from '../unit/subnet/etcd/fixtures.ts'

const skip = etcdSkipReason()

const P = '/coreos.com/network'
const dir = mkdtempSync(join(tmpdir(), 'weft-etcd-cluster-'))
const procs = new Map<string, ChildProcess>()
const stopAll = (): void => { for (const p of procs.values()) p.kill('SIGKILL') }
process.on('exit', () => {
  stopAll()
  rmSync(dir, { recursive: true, force: true })
})
after(async () => {
  for (const name of [...procs.keys()]) await stop(name)
  rmSync(dir, { recursive: true, force: true })
})

const freePort = (): Promise<number> => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const port = (s.address() as { port: number }).port
    s.close(() => resolve(port))
  })
})

interface Member { name: string; client: string; peer: string }

function launch(m: Member, cluster: string, state: 'new' | 'existing'): void {
  const proc = spawn('setpriv', ['--pdeathsig', 'KILL', 'etcd', '--name', m.name, '--data-dir', join(dir, m.name),
    '--listen-client-urls', m.client, '--advertise-client-urls', m.client, '--listen-peer-urls', m.peer,
    '--initial-advertise-peer-urls', m.peer, '--initial-cluster', cluster, '--initial-cluster-state', state,
    '--initial-cluster-token', 'weft-test', '--logger', 'zap', '--log-level', 'error'], { stdio: 'ignore' })
  procs.set(m.name, proc)
}

async function stop(name: string): Promise<void> {
  const p = procs.get(name)
  procs.delete(name)
  if (!p || p.exitCode !== null || p.signalCode !== null) return
  const gone = new Promise((r) => p.once('exit', r))
  p.kill('SIGTERM')
  await gone
}

async function healthy(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
      if (((await r.json()) as { health?: string }).health === 'true') return
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`${url} not healthy`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

test('losing the leader cancels the watch; with a quorum back it resumes', { skip, timeout: 60_000 }, async () => {
  const members: Member[] = []
  for (const name of ['m1', 'm2', 'm3']) members.push({ name, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` })
  const cluster = members.map((m) => `${m.name}=${m.peer}`).join(',')
  for (const m of members) launch(m, cluster, 'new')
  await Promise.all(members.map((m) => healthy(m.client, 20_000)))

  const registry = new EtcdRegistry({ endpoints: members.map((m) => m.client), logger: new MemoryLogger(), timeoutMs: 2000 })
  const logger = new MemoryLogger()
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger, clock: systemClock, parseConfig: testParseConfig })
  const ac = new AbortController()
  try {
    await registry.putConfig(P, '{"Network":"10.5.0.0/16"}', AbortSignal.timeout(5000))
    const results: LeaseWatchResult[] = []
    const consumer = (async () => { for await (const r of sm.watchLeases(undefined, ac.signal)) results.push(r) })()
    while (results.length === 0) await new Promise((r) => setTimeout(r, 50))

    await stop('m2')
    await stop('m3')
    // m1 (where the watch lives) loses its leader after the election timeout
    const deadline = Date.now() + 15_000
    const noLeader = (): boolean => logger.find('lease watch failed; reconnecting').some((e) => /no leader/.test(errorMessage(e.err) + String((e.err as Error)?.cause ?? '')))
    while (!noLeader() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
    assert.ok(noLeader(), JSON.stringify(logger.entries.map((e) => [e.msg, errorMessage(e.err)])))

    launch(members[1]!, cluster, 'existing')
    await healthy(members[1]!.client, 20_000)
    await healthy(members[0]!.client, 20_000)
    const own = await sm.acquireLease(await sm.getNetworkConfig(AbortSignal.timeout(5000)), { publicIP: ip('10.0.0.7'), backendType: 'vxlan' }, AbortSignal.timeout(5000))
    const until = Date.now() + 10_000
    const seen = (): boolean => results.some((r) => r.kind === 'events' && r.events.some((e) => formatCidr(e.lease.subnet!) === formatCidr(own.subnet!)))
    while (!seen() && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    assert.ok(seen(), 'the resumed watch reports the new lease')
    ac.abort()
    await consumer
  } finally {
    ac.abort()
    await registry.close()
  }
})
