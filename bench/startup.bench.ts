/**
 * weftd start-up and memory (issue: core; targets: subnet.env within 100 ms of spawn, RSS ≤ 50 MiB
 * idle and with 5,000 leases). Runs in a throwaway namespace with its own etcd on loopback:
 * - spawn → subnet.env for weftd (alloc), median of 7, against a baseline measured the same way:
 *   a bare `node` that writes a file (Node's own start-up, which no daemon can beat);
 * - RSS of weftd idle (alloc), of alloc with 5,000 leases in etcd, and of vxlan holding 5,000
 *   peers, with the time from spawn until all 5,000 routes are in the kernel.
 * Each figure in the environment a service gets; the start-up figures and the alloc RSS also
 * with this shell's NODE_EXTRA_CA_CERTS when it is set (see SERVICE_ENV).
 * Prints figures and writes bench/results/startup.json. Needs root.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { setMaxListeners } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SERVICE_ENV } from './service-env.ts'

const REPO = fileURLToPath(new URL('..', import.meta.url))
// WEFT_BENCH_WEFTD: another entry point to measure (e.g. a wrapper that samples memory).
const WEFTD = process.env.WEFT_BENCH_WEFTD ?? join(REPO, 'bin', 'weftd')
const RUNS = 7
/** Every process this bench starts, killed when it exits for any reason. */
const live = new Set<ChildProcess>()
process.on('exit', () => { for (const p of live) p.kill('SIGKILL') })
function track(proc: ChildProcess): ChildProcess {
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  return proc
}
const PEERS = 5000
const SETTLE_MS = Number(process.env.WEFT_BENCH_SETTLE_MS ?? 20_000)
async function inner(): Promise<void> {
  const { startEtcd } = await import('../test/helpers/etcd-server.ts')
  const { EtcdRegistry } = await import('../src/subnet/etcd/etcd-registry.ts')
  const { silentLogger } = await import('../src/log/logger.ts')
  const etcd = await startEtcd()
  const dir = mkdtempSync(join(tmpdir(), 'weft-bench-'))
  const registry = new EtcdRegistry({ endpoints: [etcd.endpoint], logger: silentLogger })
  const signal = AbortSignal.timeout(600_000)
  setMaxListeners(1000, signal)
  const prefixAlloc = '/bench/alloc'
  const prefixVxlan = '/bench/vxlan'
  const prefixAlloc5k = '/bench/alloc5k'
  /** PEERS leases of 10.64.0.0/10 under `prefix`, values from `value(n)`. */
  const fillLeases = async (prefix: string, value: (n: number) => string) => {
    for (let start = 0; start < PEERS; start += 250) {
      await Promise.all(Array.from({ length: Math.min(250, PEERS - start) }, (_, k) => {
        const n = start + k + 2
        return registry.createSubnet(prefix, `10.${64 + (n >> 8)}.${n & 255}.0-24`, value(n), 3600, signal)
      }))
    }
  }
  try {
    await registry.putConfig(prefixAlloc, '{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}', signal)
    const startOf = async (env: NodeJS.ProcessEnv, tag: string) => {
      const baseline: number[] = []
      const weftd: number[] = []
      for (let i = 0; i < RUNS; i++) {
        const marker = join(dir, `baseline-${tag}-${i}`)
        baseline.push(await timeToFile([process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`], marker, false, env))
        const file = join(dir, `subnet-${tag}-${i}.env`)
        weftd.push(await timeToFile([process.execPath, WEFTD, `--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefixAlloc}`, '--iface=eth0', `--subnet-file=${file}`, '--iptables-forward-rules=false', `--public-ip=10.200.${1 + i}.1`], file, true, env))
      }
      const idle = await rssOf([process.execPath, WEFTD, `--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefixAlloc}`, '--iface=eth0', `--subnet-file=${join(dir, `idle-${tag}.env`)}`, '--iptables-forward-rules=false'], 3000, env)
      return {
        weftdMedian: round(med(weftd)), baselineNodeMedian: round(med(baseline)), runs: weftd.map(round), baselineRuns: baseline.map(round),
        overheadOverNodeMs: round(med(weftd) - med(baseline)), ratioToNode: round(med(weftd) / med(baseline)), idleRssMiB: round(idle),
      }
    }
    const clean = await startOf(SERVICE_ENV, 'clean')
    const inherited = process.env.NODE_EXTRA_CA_CERTS === undefined ? null : await startOf(process.env, 'inherited')
    const idle = clean.idleRssMiB

    // The core's own case (alloc, the one backend of the core issue): 5,000 leases in etcd that
    // weftd lists to pick its subnet, then idles holding its own lease.
    await registry.putConfig(prefixAlloc5k, '{"Network":"10.64.0.0/10","Backend":{"Type":"alloc"}}', signal)
    await fillLeases(prefixAlloc5k, (n) => `{"PublicIP":"10.200.${n >> 8}.${n & 255}","PublicIPv6":null,"BackendType":"","BackendData":null}`)
    const alloc5k = (env: NodeJS.ProcessEnv, tag: string) => rssOf([process.execPath, WEFTD, `--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefixAlloc5k}`, '--iface=eth0', `--subnet-file=${join(dir, `alloc5k-${tag}.env`)}`, '--iptables-forward-rules=false'], SETTLE_MS, env)
    const allocWith5000 = await alloc5k(SERVICE_ENV, 'clean')
    const allocWith5000Inherited = inherited && await alloc5k(process.env, 'inherited')

    // 5,000 vxlan peers in etcd, then weftd with vxlan: time until all routes exist, and RSS.
    await registry.putConfig(prefixVxlan, '{"Network":"10.64.0.0/10","Backend":{"Type":"vxlan"}}', signal)
    await fillLeases(prefixVxlan, (n) => {
      const mac = `02:00:00:${hex(n >> 16)}:${hex((n >> 8) & 255)}:${hex(n & 255)}`
      return `{"PublicIP":"10.200.${n >> 8}.${n & 255}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`
    })
    const t0 = performance.now()
    const proc = track(spawn(process.execPath, [WEFTD, `--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefixVxlan}`, '--iface=eth0', `--subnet-file=${join(dir, 'vx.env')}`, '--iptables-forward-rules=false'], { stdio: 'ignore', env: SERVICE_ENV }))
    let programmedMs = NaN
    for (let i = 0; i < 1200; i++) {
      await sleep(25)
      const routes = spawnSync('ip', ['-4', 'route', 'show', 'dev', 'flannel.1'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('onlink')).length
      if (routes >= PEERS) { programmedMs = performance.now() - t0; break }
    }
    await sleep(SETTLE_MS)
    const rssPeers = rss(proc.pid!)
    await stop(proc)

    const { idleRssMiB: _, ...spawnToSubnetEnvMs } = clean
    const result = {
      date: new Date().toISOString(),
      spawnToSubnetEnvMs,
      rssMiB: { idle, allocWith5000Leases: round(allocWith5000), with5000VxlanPeers: round(rssPeers) },
      // The same with this machine's NODE_EXTRA_CA_CERTS, which Node loads before any code runs.
      withInheritedNodeExtraCaCerts: inherited && { ...inherited, allocWith5000LeasesRssMiB: round(allocWith5000Inherited ?? NaN) },
      vxlan5000PeersSpawnToProgrammedMs: round(programmedMs),
      targets: { spawnToSubnetEnvMs: 100, rssMiB: 50 },
    }
    console.log(`spawn → subnet.env: weftd median ${result.spawnToSubnetEnvMs.weftdMedian} ms; bare node writing a file ${result.spawnToSubnetEnvMs.baselineNodeMedian} ms (ratio ${result.spawnToSubnetEnvMs.ratioToNode}, weftd's own share ${result.spawnToSubnetEnvMs.overheadOverNodeMs} ms)`)
    if (inherited) console.log(`with NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS} as inherited: weftd median ${inherited.weftdMedian} ms, bare node ${inherited.baselineNodeMedian} ms (weftd's own share ${inherited.overheadOverNodeMs} ms); RSS idle ${inherited.idleRssMiB} MiB, alloc with ${PEERS} leases ${result.withInheritedNodeExtraCaCerts?.allocWith5000LeasesRssMiB} MiB`)
    console.log(`RSS: idle ${result.rssMiB.idle} MiB; alloc with ${PEERS} leases in etcd ${result.rssMiB.allocWith5000Leases} MiB; holding ${PEERS} vxlan peers ${result.rssMiB.with5000VxlanPeers} MiB (target ≤ 50)`)
    console.log(`vxlan: spawn → ${PEERS} peers (neighbour+FDB+route) in the kernel: ${result.vxlan5000PeersSpawnToProgrammedMs} ms`)
    writeFileSync(join(REPO, 'bench', 'results', 'startup.json'), JSON.stringify(result, null, 2) + '\n')
  } finally {
    await registry.close()
    await etcd.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Milliseconds from spawn until `file` exists; kills the process afterwards when `kill`. */
async function timeToFile(argv: string[], file: string, kill: boolean, env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now()
  const proc = track(spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', env }))
  let ms = NaN
  while (performance.now() - t0 < 10_000) {
    if (existsSync(file) && statSync(file).size > 0) { ms = performance.now() - t0; break }
    await new Promise((r) => setTimeout(r, 1))
  }
  if (kill) await stop(proc)
  else await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)))
  return ms
}

async function rssOf(argv: string[], settleMs: number, env: NodeJS.ProcessEnv): Promise<number> {
  const proc = track(spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env }))
  let err = ''
  proc.stderr?.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-4000) })
  await sleep(settleMs)
  if (proc.exitCode !== null) throw new Error(`weftd exited early (${proc.exitCode}): ${err}`)
  const value = rss(proc.pid!)
  await stop(proc)
  return value
}

/** SIGTERM, then SIGKILL after 5 s: the bench never leaves a weftd behind. */
async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise((r) => proc.once('exit', r))
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const round = (n: number) => Math.round(n * 10) / 10
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number
const hex = (n: number) => n.toString(16).padStart(2, '0')

if (process.getuid?.() !== 0) {
  console.log('startup bench: skipped (needs root for a network namespace)')
  process.exit(0)
}

if (process.argv[2] !== '--inner') {
  const ns = `wtb${process.pid.toString(36)}`
  const sh = (...a: string[]) => spawnSync(a[0]!, a.slice(1), { stdio: 'inherit' })
  let child: ChildProcess | undefined
  const cleanup = () => spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      child?.kill('SIGTERM')
      setTimeout(() => { cleanup(); process.exit(130) }, 3000)
    })
  }
  try {
    sh('ip', 'netns', 'add', ns)
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    sh('ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p')
    sh('ip', '-n', ns, 'link', 'set', 'eth0p', 'up')
    sh('ip', '-n', ns, 'addr', 'add', '10.200.0.1/16', 'dev', 'eth0')
    sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up')
    // Async, so a signal to this process still runs the namespace clean-up above.
    child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), '--inner'], { stdio: 'inherit' })
    process.exitCode = await new Promise<number>((resolve) => child?.once('exit', (code) => resolve(code ?? 1)))
  } finally {
    sh('ip', 'netns', 'del', ns)
  }
} else {
  await inner()
}

