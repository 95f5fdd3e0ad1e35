/**
 * The weft demo (README main command, needs root): an N-host testbed on one machine, etcd, weftd
 * on every host, the lease table, and for data-plane backends a pod per host pinging every other
 * pod. Stays up until Ctrl-C (the testbed removes everything on SIGINT/SIGTERM and on exit);
 * `--once` runs the sequence, cleans up and exits non-zero if a step failed.
 *
 * Run: `bash scripts/demo.sh [--backend=vxlan] [--once]`, or `node --import tsx demo/demo.ts ...`.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatCidr, parseCidr } from '../src/ip/ip.ts'
import { createTestbed, type Testbed, type TestHost } from '../test/helpers/testbed.ts'
import { pingUntil, type NsProcess } from '../test/helpers/netns.ts'
import { addPod, waitForSubnetEnv, type Pod } from '../test/helpers/pods.ts'
import { CNI_PATH, addPodViaCni, cniPluginsAvailable } from '../test/helpers/cni-pods.ts'
import { DATA_PLANE_BACKENDS, USAGE, UsageError, demoNetworkConfig, parseDemoArgs, type DemoArgs } from './demo-args.ts'
import { formatLeases, formatPingMatrix, type LeaseRow, type PingResult } from './demo-report.ts'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const print = (line = ''): void => { process.stdout.write(`${line}\n`) }
let stopping = false
const NO_BACKEND_TYPE: readonly string[] = ['alloc', 'udp']
const indent = (text: string): string => text.split('\n').map((l) => `    ${l}`).join('\n')

/** Runs named steps, printing progress and remembering failures. */
class Steps {
  failed: string[] = []
  async run<T>(title: string, fn: () => Promise<T>): Promise<T | undefined> {
    const t0 = Date.now()
    print(`==> ${title}`)
    try {
      const value = await fn()
      print(`    ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
      return value
    } catch (err) {
      print(`    FAILED: ${err instanceof Error ? err.message : String(err)}`)
      this.failed.push(title)
      return undefined
    }
  }
}

interface HostRun {
  host: TestHost
  weftd: NsProcess
  subnetFile: string
  env?: Record<string, string>
}

/**
 * The argv prefix that runs a weft executable: an explicit path (`.ts` through tsx), else the
 * built bin/<name>, else src/cli/<name>.ts through tsx (a checkout that was not built yet).
 */
function nodeCommand(name: 'weftd' | 'weft', explicit: string | undefined): string[] | undefined {
  const tsx = (file: string): string[] => [process.execPath, '--import', import.meta.resolve('tsx'), file]
  if (explicit !== undefined) return explicit.endsWith('.ts') ? tsx(explicit) : [process.execPath, explicit]
  if (existsSync(join(repoRoot, 'dist', `${name}.cjs`))) return [process.execPath, join(repoRoot, 'bin', name)]
  const src = join(repoRoot, 'src', 'cli', `${name}.ts`)
  return existsSync(src) ? tsx(src) : undefined
}

function startWeftd(bed: Testbed, host: TestHost, args: DemoArgs, weftd: readonly string[]): HostRun {
  const subnetFile = join(bed.workDir, host.name, 'subnet.env')
  const proc = host.spawn([
    ...weftd,
    `--etcd-endpoints=${bed.etcdEndpoint}`, '--iface=eth0', `--subnet-file=${subnetFile}`,
    '--healthz-port=0', `--v=${args.verbosity}`,
  ], args.showLogs ? { onLine: (l) => print(`[${host.name}] ${l}`) } : {})
  const run = { host, weftd: proc, subnetFile }
  started.push(run)
  return run
}

// Every weftd started, for the log tails printed when a later step fails.
const started: HostRun[] = []
const tail = (p: NsProcess, lines = 15): string => p.output().trim().split('\n').slice(-lines).join('\n')

async function waitForSubnets(runs: readonly HostRun[], timeoutSec: number): Promise<void> {
  await Promise.all(runs.map(async (r) => {
    try {
      r.env = await waitForSubnetEnv(r.host, r.subnetFile, { timeoutMs: timeoutSec * 1000, isAlive: () => r.weftd.isRunning() })
    } catch (err) {
      const last = tail(r.weftd)
      throw new Error(`${(err as Error).message}${last ? `\n${indent(`weftd output (last lines):\n${last}`)}` : ''}`)
    }
  }))
  for (const r of runs) {
    const e = r.env!
    print(`    ${r.host.name}: FLANNEL_SUBNET=${e.FLANNEL_SUBNET ?? '-'}${e.FLANNEL_IPV6_SUBNET ? ` FLANNEL_IPV6_SUBNET=${e.FLANNEL_IPV6_SUBNET}` : ''} FLANNEL_MTU=${e.FLANNEL_MTU ?? '-'}`)
  }
}

/** Prints the lease table with `weft leases`, falling back to reading etcd directly; checks one lease per host. */
async function showLeases(bed: Testbed, runs: readonly HostRun[], args: DemoArgs): Promise<void> {
  const weft = nodeCommand('weft', args.weft)
  let printed = false
  if (weft) {
    const r = await bed.hosts[0]!.run([...weft, 'leases', `--etcd-endpoints=${bed.etcdEndpoint}`], { allowFailure: true, timeoutMs: 15_000 })
    if (r.code === 0 && r.stdout.trim() !== '') {
      print(indent(r.stdout.trimEnd()))
      printed = true
    } else {
      const lines = r.stderr.trim().split('\n')
      const why = lines.find((l) => /error/i.test(l)) ?? lines.at(-1) ?? ''
      print(`    weft leases failed (exit ${r.code}): ${why.trim()}; reading etcd directly`)
    }
  }
  const leases = await bed.getLeases()
  const hostOf = new Map(bed.hosts.map((h) => [h.underlayIp, h.name]))
  const rows: LeaseRow[] = leases.map((l) => {
    const publicIp = String(l.attrs.PublicIP ?? '')
    const host = hostOf.get(publicIp)
    return { subnet: l.subnet, ...(l.ipv6Subnet ? { ipv6Subnet: l.ipv6Subnet } : {}), publicIp, backend: String(l.attrs.BackendType ?? ''), ...(host ? { host } : {}) }
  })
  if (!printed) print(indent(formatLeases(rows)))
  // Each host's subnet.env must name the subnet of the lease carrying its own address.
  for (const r of runs) {
    const mine = rows.filter((row) => row.publicIp === r.host.underlayIp)
    if (mine.length !== 1) throw new Error(`${r.host.name} (${r.host.underlayIp}) holds ${mine.length} leases, expected 1`)
    const envSubnet = r.env?.FLANNEL_SUBNET
    const envNet = envSubnet ? parseCidr(envSubnet) : undefined
    if (envSubnet && (!envNet || formatCidr(envNet) !== mine[0]!.subnet)) {
      throw new Error(`${r.host.name}: FLANNEL_SUBNET=${envSubnet} is not in its lease ${mine[0]!.subnet}`)
    }
    // flannel's udp and alloc backends write no BackendType.
    const expected = NO_BACKEND_TYPE.includes(args.backend) ? '' : args.backend
    if (mine[0]!.backend !== expected) throw new Error(`${r.host.name}: lease BackendType is "${mine[0]!.backend}", expected "${expected}"`)
  }
}

async function pingMatrix(pods: readonly Pod[], family: 4 | 6, timeoutSec: number): Promise<void> {
  const deadline = Date.now() + timeoutSec * 1000
  const pairs = pods.flatMap((a) => pods.filter((b) => b !== a).map((b) => [a, b] as const))
  const results: PingResult[] = await Promise.all(pairs.map(async ([a, b]) => {
    const addr = family === 4 ? b.ip : b.ipv6!
    const r = await pingUntil(a.netns, addr, { timeoutMs: Math.max(0, deadline - Date.now()) })
    return { from: a.host.name, to: b.host.name, ok: r.ok, attempts: r.attempts, ...(r.rttMs !== undefined ? { rttMs: r.rttMs } : {}) }
  }))
  print(indent(`IPv${family} pod-to-pod ping (${pods.map((p) => `${p.host.name}=${family === 4 ? p.ip : p.ipv6}`).join(' ')})`))
  print(indent(formatPingMatrix(pods.map((p) => p.host.name), results)))
  const failed = results.filter((r) => !r.ok)
  if (failed.length > 0) throw new Error(`${failed.length} of ${results.length} pod pairs unreachable: ${failed.map((f) => `${f.from}->${f.to}`).join(', ')}`)
}

/** Runs every step; resolves with the pods it created (none for alloc or after a failure). */
async function sequence(bed: Testbed, args: DemoArgs, weftd: readonly string[], steps: Steps): Promise<Pod[]> {
  const config = demoNetworkConfig(args)
  const wrote = await steps.run(`writing network config to etcd: ${JSON.stringify(config)}`, async () => {
    await bed.putNetworkConfig(config)
    return true
  })
  if (!wrote) return []
  const runs = await steps.run(`starting weftd on ${bed.hosts.length} hosts and waiting for subnet.env`, async () => {
    const started = bed.hosts.map((h) => startWeftd(bed, h, args, weftd))
    for (const r of started) print(`    ${r.host.name}: weftd pid ${r.weftd.pid}`)
    await waitForSubnets(started, args.timeoutSec)
    return started
  })
  if (!runs) return []
  for (const r of runs) {
    void r.weftd.exited.then(({ code, signal }) => {
      if (!stopping) print(`[${r.host.name}] weftd exited unexpectedly (${signal ?? `code ${code}`}); output:\n${indent(tail(r.weftd))}`)
    })
  }
  await steps.run('lease table', () => showLeases(bed, runs, args))
  if (!DATA_PLANE_BACKENDS.includes(args.backend)) {
    print(`    (backend ${args.backend} has no data plane: no pods; try --backend=vxlan or --backend=host-gw)`)
    return []
  }
  // Pods come from the weft CNI plugin (bridge + host-local), as a container runtime would make them;
  // without Debian's CNI plugins the demo wires them by hand.
  const viaCni = cniPluginsAvailable()
  const pods = await steps.run(`creating a pod behind cni0 on every host (${viaCni ? 'weft CNI plugin → bridge + host-local' : 'by hand: no CNI plugins in ' + CNI_PATH})`, async () => {
    const made: Pod[] = []
    for (const r of runs) {
      const env = r.env!
      const mtu = Number(env.FLANNEL_MTU ?? 1500)
      made.push(viaCni
        ? await addPodViaCni(r.host, { name: 'pod', subnetFile: r.subnetFile, stateDir: join(bed.workDir, `${r.host.name}-cni`) })
        : await addPod(r.host, { name: 'pod', subnet: env.FLANNEL_SUBNET!, mtu, ...(env.FLANNEL_IPV6_SUBNET ? { ipv6Subnet: env.FLANNEL_IPV6_SUBNET } : {}) }))
    }
    for (const p of made) print(`    ${p.host.name}: pod ${p.netns} eth0 ${p.ip}${p.ipv6 ? ` ${p.ipv6}` : ''} via cni0 ${p.gateway}`)
    return made
  })
  if (!pods) return []
  await steps.run('pinging every pod from every other pod (IPv4)', () => pingMatrix(pods, 4, args.timeoutSec))
  if (pods.every((p) => p.ipv6)) await steps.run('pinging every pod from every other pod (IPv6)', () => pingMatrix(pods, 6, args.timeoutSec))
  return pods
}

async function main(argv: readonly string[]): Promise<number> {
  let args: DemoArgs
  try {
    args = parseDemoArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`demo: ${err.message}\n${USAGE}\n`)
    return 2
  }
  if (args.help) {
    print(USAGE)
    return 0
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: needs root (it creates network namespaces); run: sudo bash scripts/demo.sh\n')
    return 1
  }
  const weftd = nodeCommand('weftd', args.weftd)
  if (!weftd || !existsSync(weftd[weftd.length - 1]!)) {
    process.stderr.write(`demo: weftd not found (${weftd?.at(-1) ?? 'dist/weftd.cjs or src/cli/weftd.ts'}); build first: bash scripts/setup.sh\n`)
    return 1
  }
  print(`weftd: ${weftd.slice(1).join(' ')}`)
  // Registered before the testbed's own handler, so this line prints before its synchronous cleanup.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      stopping = true
      print(`\n==> ${sig}: stopping weftd, removing namespaces and etcd`)
    })
  }

  const steps = new Steps()
  const bed = await steps.run(`creating a ${args.hosts}-host testbed (namespaces, bridge, etcd)${args.ipv6 ? ', dual-stack' : ''}`, async () => {
    const b = await createTestbed({ hosts: args.hosts, ipv6: args.ipv6 })
    for (const h of b.hosts) print(`    ${h.name}: netns ${h.netns} eth0 ${h.underlayIp}${h.underlayIpv6 ? ` ${h.underlayIpv6}` : ''}`)
    print(`    etcd: ${b.etcdEndpoint} (netns ${b.etcdNetns})`)
    return b
  })
  if (!bed) return 1
  try {
    const pods = await sequence(bed, args, weftd, steps)
    // A failure after start-up (leases, pings) is easier to read next to what weftd logged.
    if (steps.failed.length > 0 && steps.failed.every((f) => !f.startsWith('starting weftd'))) {
      for (const r of started) print(`==> weftd on ${r.host.name} (last lines):\n${indent(tail(r.weftd, 10))}`)
    }
    if (args.once) {
      print(steps.failed.length === 0 ? '==> all steps passed' : `==> ${steps.failed.length} step(s) failed: ${steps.failed.join('; ')}`)
      return steps.failed.length === 0 ? 0 : 1
    }
    print('')
    print('demo is up. Look around, e.g.:')
    print(`    ip netns exec ${bed.hosts[0]!.netns} ip route`)
    const [p1, p2] = pods
    if (p1 && p2) print(`    ip netns exec ${p1.netns} ping ${p2.ip}`)
    print(`    ip netns exec ${bed.etcdNetns} env ETCDCTL_API=3 etcdctl --endpoints=${bed.etcdEndpoint} get --prefix /coreos.com/network`)
    print('press Ctrl-C to stop and clean up')
    // Keeps the process alive; Ctrl-C ends it through the testbed's signal handler.
    await new Promise<never>(() => { setInterval(() => undefined, 1 << 30) })
    return 0
  } finally {
    stopping = true
    print('==> cleaning up')
    await bed.destroy()
  }
}

process.exitCode = await main(process.argv.slice(2))
