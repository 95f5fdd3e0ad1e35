/**
 * Lease benchmark on a real etcd: 5,000 leases written in flannel's format; then the time to
 * list them (paginated), turn them into the first watch snapshot (EtcdSubnetManager
 * watchLeases) and that into 'added' events (LeaseWatcher), and the RSS of a fresh process holding those 5,000 leases versus one that
 * only loaded the modules. Writes bench/results/leases.json.
 *
 *   node --import tsx bench/leases.bench.ts [leases]
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { EtcdRegistry } from '../src/subnet/etcd/etcd-registry.ts'
import { EtcdSubnetManager } from '../src/subnet/etcd/etcd-subnet-manager.ts'
import { silentLogger } from '../src/log/logger.ts'
import { systemClock } from '../src/util/clock.ts'
import type { NetworkConfig } from '../src/config/network-config.ts'
import type { LeaseWatchResult } from '../src/lease/lease.ts'
import { LeaseWatcher } from '../src/lease/lease-watcher.ts'

const P = '/coreos.com/network'
const parseConfig = (): NetworkConfig => { throw new Error('not used') }

/** Lists once and keeps the snapshot: what a daemon holds in memory. */
async function firstSnapshot(endpoint: string): Promise<{ ms: number; leases: number; held: LeaseWatchResult; sm: EtcdSubnetManager }> {
  const registry = new EtcdRegistry({ endpoints: [endpoint], logger: silentLogger, timeoutMs: 30_000 })
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger: silentLogger, clock: systemClock, parseConfig })
  const ac = new AbortController()
  const t0 = performance.now()
  const it = sm.watchLeases(undefined, ac.signal)[Symbol.asyncIterator]()
  const first = await it.next()
  // What a backend does with it: diff against nothing known → one 'added' per lease.
  const events = first.value?.kind === 'snapshot' ? new LeaseWatcher().reset(first.value.leases) : []
  const ms = performance.now() - t0
  if (events.length === 0) throw new Error('no events from the snapshot')
  ac.abort()
  await it.return?.()
  const held = first.value as LeaseWatchResult
  return { ms, leases: held.kind === 'snapshot' ? held.leases.length : -1, held, sm }
}

async function child(): Promise<void> {
  const endpoint = process.env['WEFT_BENCH_ETCD'] as string
  const gc = (globalThis as { gc?: () => void }).gc
  let leases = 0
  let keep: unknown
  if (process.env['WEFT_BENCH_MODE'] === 'hold') {
    const r = await firstSnapshot(endpoint)
    leases = r.leases
    keep = r.held
    await r.sm.close()
  }
  gc?.()
  await new Promise((r) => setTimeout(r, 50))
  gc?.()
  const mem = process.memoryUsage()
  process.stdout.write(JSON.stringify({ leases, rss: mem.rss, heapUsed: mem.heapUsed, kept: keep !== undefined }) + '\n')
}

async function main(): Promise<void> {
  const { startEtcd } = await import('../test/helpers/etcd-server.ts')
  const count = Number(process.argv[2] ?? 5000)
  const etcd = await startEtcd()
  try {
    // Bulk load: 50 puts per transaction, all on one 24 h lease, values exactly as flannel writes them.
    const grant = (await post(`${etcd.endpoint}/v3/lease/grant`, { TTL: '86400' })) as { ID: string }
    const w0 = performance.now()
    for (let i = 0; i < count; i += 50) {
      const ops = []
      for (let j = i; j < Math.min(count, i + 50); j++) {
        const key = `${P}/subnets/10.${100 + (j >> 8)}.${j & 0xff}.0-24`
        const value = `{"PublicIP":"172.16.${j >> 8}.${(j & 0xff) || 1}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:a0:00:00:${((j >> 8) & 0xff).toString(16).padStart(2, '0')}:${(j & 0xff).toString(16).padStart(2, '0')}"}}`
        ops.push({ request_put: { key: b64(key), value: b64(value), lease: grant.ID } })
      }
      await post(`${etcd.endpoint}/v3/kv/txn`, { success: ops })
    }
    const writeMs = performance.now() - w0

    const runs: number[] = []
    let listed = 0
    for (let i = 0; i < 7; i++) {
      const r = await firstSnapshot(etcd.endpoint)
      runs.push(r.ms)
      listed = r.leases
      await r.sm.close()
    }
    const sorted = [...runs].sort((a, b) => a - b)

    const rss = (mode: string): { rss: number; heapUsed: number; leases: number } => {
      const out = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url)], {
        env: { ...process.env, WEFT_BENCH_CHILD: '1', WEFT_BENCH_MODE: mode, WEFT_BENCH_ETCD: etcd.endpoint }, encoding: 'utf8', timeout: 60_000,
      })
      if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`)
      return JSON.parse(out.stdout.trim().split('\n').at(-1) as string) as { rss: number; heapUsed: number; leases: number }
    }
    const base = rss('baseline')
    const hold = rss('hold')
    const mb = (n: number): number => Math.round((n / 1048576) * 10) / 10
    const result = {
      date: new Date().toISOString(),
      leases: count,
      listedLeases: listed,
      bulkWriteMs: round(writeMs),
      snapshotMsMedian: round(sorted[Math.floor(sorted.length / 2)] as number),
      snapshotMsMin: round(sorted[0] as number),
      snapshotMsRuns: runs.map(round),
      rssBaselineMB: mb(base.rss),
      rssHoldingMB: mb(hold.rss),
      rssDeltaMB: mb(hold.rss - base.rss),
      heapDeltaMB: mb(hold.heapUsed - base.heapUsed),
      bytesPerLease: Math.round((hold.heapUsed - base.heapUsed) / count),
    }
    console.log(`leases: ${count} written in ${result.bulkWriteMs} ms; listed ${listed}`)
    console.log(`list + snapshot + events: median ${result.snapshotMsMedian} ms, min ${result.snapshotMsMin} ms (7 runs)`)
    console.log(`RSS: ${result.rssBaselineMB} MB baseline, ${result.rssHoldingMB} MB holding ${count} leases (+${result.rssDeltaMB} MB; heap +${result.heapDeltaMB} MB, ~${result.bytesPerLease} B/lease)`)
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
    writeFileSync(new URL('./results/leases.json', import.meta.url), JSON.stringify(result, null, 2) + '\n')
  } finally {
    await etcd.destroy()
  }
}

const b64 = (s: string): string => Buffer.from(s).toString('base64')
const round = (n: number): number => Math.round(n * 10) / 10

async function post(url: string, body: unknown): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`)
  return res.json()
}

if (process.env['WEFT_BENCH_CHILD'] === '1') await child()
else await main()
