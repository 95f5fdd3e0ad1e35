/**
 * What metrics cost in memory (issue: operate): RSS of a node:http server alone, with weft's
 * hand-written exposition (src/metrics, bundled as weftd bundles it) and with prom-client
 * 15.1.3 carrying the same families plus its default metrics, each scraped 20 times; then an
 * idle weftd (alloc, etcd in a test namespace) without and with --metrics-addr. Medians of 3.
 * Writes bench/results/metrics.json.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { build } from 'esbuild'
import { SERVICE_ENV } from './service-env.ts'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const RUNS = 3
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number
const round = (n: number) => Math.round(n * 10) / 10

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

/** Runs a script that listens and prints its port, scrapes it 20 times, settles, reads RSS. */
async function serverRss(script: string, env: NodeJS.ProcessEnv): Promise<number> {
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      proc.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().trim())))
      proc.once('exit', (code) => reject(new Error(`server exited ${code}`)))
    })
    for (let i = 0; i < 20; i++) await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    await sleep(1500)
    return rssMiB(proc.pid!)
  } finally {
    proc.kill('SIGKILL')
  }
}

const FAMILIES_PROM = `
const p = require('prom-client'); const r = new p.Registry(); p.collectDefaultMetrics({ register: r })
const c = (n, h, l) => new p.Counter({ name: n, help: h, labelNames: l, registers: [r] })
const g = (n, h, l) => new p.Gauge({ name: n, help: h, labelNames: l, registers: [r] })
const hi = (n, h, l) => new p.Histogram({ name: n, help: h, labelNames: l, registers: [r] })
g('weft_build_info', 'x', ['version', 'backend', 'store']).set({ version: 'v0', backend: 'vxlan', store: 'etcd' }, 1)
g('weft_lease_expiration_timestamp_seconds', 'x', []).set(1); c('weft_lease_renewals_total', 'x', ['result']).inc({ result: 'ok' })
g('weft_peers', 'x', ['backend']).set({ backend: 'vxlan' }, 2); hi('weft_reconcile_duration_seconds', 'x', []).observe(0.01)
c('weft_kernel_operations_total', 'x', ['object', 'op', 'result']).inc({ object: 'route', op: 'replace', result: 'ok' })
c('weft_kernel_repairs_total', 'x', ['object']); c('weft_store_requests_total', 'x', ['store', 'op', 'result']).inc({ store: 'etcd', op: 'kv_range', result: 'ok' })
hi('weft_store_request_duration_seconds', 'x', ['store', 'op']).observe({ store: 'etcd', op: 'kv_range' }, 0.002)
c('weft_store_watch_restarts_total', 'x', ['store', 'reason']); c('weft_udp_packets_total', 'x', ['direction']); c('weft_udp_dropped_packets_total', 'x', ['reason'])
require('http').createServer(async (q, s) => { s.end(await r.metrics()) }).listen(0, '127.0.0.1', function () { console.log(this.address().port) })`

async function weftdIdleRss(extra: string[]): Promise<number[]> {
  const { createTestbed } = await import('../test/helpers/testbed.ts')
  const bed = await createTestbed({ hosts: 1 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'alloc' } })
    const out: number[] = []
    for (let i = 0; i < RUNS; i++) {
      const host = bed.hosts[0]!
      const proc = host.spawn([process.execPath, join(REPO, 'bin', 'weftd'), `--etcd-endpoints=${bed.etcdEndpoint}`, '--iface=eth0', `--subnet-file=${join(bed.workDir, `s${i}.env`)}`, '--iptables-forward-rules=false', ...extra], { env: { NODE_EXTRA_CA_CERTS: undefined } })
      await sleep(6000)
      if (!proc.isRunning()) throw new Error(`weftd exited: ${proc.output()}`)
      out.push(rssMiB(proc.pid))
      await proc.stop()
    }
    return out
  } finally {
    await bed.destroy()
  }
}

const dir = mkdtempSync(join(tmpdir(), 'weft-metrics-bench-'))
try {
  // weft's module as weftd carries it: one CommonJS bundle.
  const bundle = join(dir, 'weft-metrics.cjs')
  await build({ entryPoints: [join(REPO, 'src/metrics/metrics-server.ts')], outfile: bundle, bundle: true, format: 'cjs', platform: 'node', target: 'node20', logLevel: 'warning' })
  const weftScript = `const { startMetrics } = require(${JSON.stringify(bundle)});
startMetrics({ host: '127.0.0.1', port: 0 }, { version: 'v0', backend: 'vxlan', store: 'etcd' }).then((e) => {
  const m = e.metrics; m.leaseExpiration(Date.now()); m.leaseRenewal('ok'); m.observePeers('vxlan', () => 2); m.reconcile(0.01)
  m.kernelOp('route', 'replace', 'ok'); m.storeRequest('etcd', 'kv_range', 'ok', 0.002); console.log(e.port) })`
  const bare = `require('http').createServer((q, s) => s.end('x')).listen(0, '127.0.0.1', function () { console.log(this.address().port) })`
  let promResolvable = true
  try { createRequire(join(REPO, 'package.json')).resolve('prom-client') } catch { promResolvable = false }
  const env = { ...SERVICE_ENV, NODE_PATH: join(REPO, 'node_modules') }
  const rows: Record<string, number[]> = { bareHttp: [], weftExposition: [], promClient: [] }
  for (let i = 0; i < RUNS; i++) {
    rows.bareHttp!.push(await serverRss(bare, env))
    rows.weftExposition!.push(await serverRss(weftScript, env))
    if (promResolvable) rows.promClient!.push(await serverRss(FAMILIES_PROM, env))
  }
  const result: Record<string, unknown> = {
    loadAvg1m: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
    serverRssMiB: {
      bareHttp: round(med(rows.bareHttp!)),
      weftExposition: round(med(rows.weftExposition!)),
      promClient: promResolvable ? round(med(rows.promClient!)) : null,
    },
  }
  const s = result.serverRssMiB as Record<string, number | null>
  console.log(`node:http alone ${s.bareHttp} MiB; + weft exposition ${s.weftExposition} MiB (+${round((s.weftExposition as number) - (s.bareHttp as number))}); + prom-client ${s.promClient ?? 'not installed'} MiB${s.promClient ? ` (+${round((s.promClient as number) - (s.bareHttp as number))})` : ''}`)
  if (process.getuid?.() === 0) {
    const off = await weftdIdleRss([])
    const on = await weftdIdleRss(['--metrics-addr=9102'])
    result.weftdIdleRssMiB = { metricsOff: round(med(off)), metricsOn: round(med(on)), runsOff: off.map(round), runsOn: on.map(round) }
    console.log(`weftd idle (alloc): ${round(med(off))} MiB without metrics, ${round(med(on))} MiB with --metrics-addr (runs: ${off.map(round).join(', ')} / ${on.map(round).join(', ')})`)
  } else {
    console.log('weftd idle RSS: skipped (needs root for a network namespace)')
  }
  mkdirSync(join(REPO, 'bench/results'), { recursive: true })
  writeFileSync(join(REPO, 'bench/results/metrics.json'), JSON.stringify(result, null, 2) + '\n')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
