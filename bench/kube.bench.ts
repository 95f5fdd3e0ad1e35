/**
 * Kubernetes mode (issue 13), on the path a host takes: the daemon spawned as a service starts it
 * (`ip netns exec`, the service environment plus NODE_NAME), default flags, vxlan and host-gw, the
 * API emulator in its own namespace across the testbed's bridge, over TLS with a token.
 * - N nodes present (1,000 and 5,000) → all N routes in the kernel, from spawn; RSS 5 s later;
 * - the API requests weftd makes per node event (100 events: adds, changes, deletes);
 * - a node joining an 8-host cluster: its route on the 7 others, from the spawn of its daemon,
 *   kube mode beside etcd mode in the same run.
 * With a flanneld binary (WEFT_BENCH_FLANNELD, default /opt/flannel-peer/bin/flanneld when it
 * exists) the same figures for flanneld in the same run, and weft/flanneld ratios.
 * Repetitions: WEFT_BENCH_KUBE_RUNS (default 3; 5,000-node runs once each). Writes
 * bench/results/kube.json. Needs root.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SERVICE_ENV } from './service-env.ts'
import type { Testbed, TestHost } from '../test/helpers/testbed.ts'
import type { NsProcess } from '../test/helpers/netns.ts'
import type { NodeInit } from '../test/emulators/kube/admin.ts'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const WEFTD = join(REPO, 'bin', 'weftd')
const FLANNELD = process.env.WEFT_BENCH_FLANNELD ?? (existsSync('/opt/flannel-peer/bin/flanneld') ? '/opt/flannel-peer/bin/flanneld' : '')
const RUNS = Number(process.env.WEFT_BENCH_KUBE_RUNS ?? 3)
const SIZES = (process.env.WEFT_BENCH_KUBE_SIZES ?? '1000,5000').split(',').map(Number)
const CAP_MS = 120_000
const P = 'flannel.alpha.coreos.com/'
const NETWORK = '10.64.0.0/10'
/** The measured host's node in the N-nodes-present runs (its podCIDR lies in NETWORK). */
const SELF = 'bench-self'

type Daemon = 'weftd' | 'flanneld'
type Backend = 'vxlan' | 'host-gw'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const round = (n: number): number => Math.round(n * 10) / 10
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN
const hex = (n: number): string => n.toString(16).padStart(2, '0')

/** Peer node i (1-based): podCIDR in 10.64.0.0/10, public IP in 10.201.0.0/16 (on-link for host-gw). */
function peerNode(i: number, backend: Backend, macSalt = 0): NodeInit {
  return {
    name: `peer-${i}`,
    podCIDR: `10.${64 + (i >> 8)}.${i & 255}.0/24`,
    annotations: {
      [`${P}kube-subnet-manager`]: 'true',
      [`${P}backend-type`]: backend,
      [`${P}public-ip`]: `10.201.${i >> 8}.${i & 255}`,
      [`${P}backend-data`]: backend === 'vxlan' ? `{"VNI":1,"VtepMAC":"0e:${hex(macSalt)}:00:00:${hex(i >> 8)}:${hex(i & 255)}"}` : 'null',
    },
  }
}

function countRoutes(netns: string): number {
  const out = spawnSync('ip', ['-n', netns, '-4', 'route', 'show', 'root', NETWORK], { encoding: 'utf8' }).stdout
  let n = 0
  for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n', i + 1)) n++
  return n
}

const LATE_MS = 30_000

interface RssParts { total: number; anon: number; file: number }

/** RSS split into anonymous memory and file pages (the node binary, libraries). */
function rssParts(pid: number): RssParts | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN)
    return { total: round(kb('VmRSS') / 1024), anon: round(kb('RssAnon') / 1024), file: round(kb('RssFile') / 1024) }
  } catch {
    return undefined
  }
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? round(Number(m[1]) / 1024) : NaN
  } catch {
    return NaN
  }
}

/** Removes what a previous run programmed on a host (devices, routes), so each run starts cold. */
function cleanHost(netns: string): void {
  for (const dev of ['flannel.1']) spawnSync('ip', ['-n', netns, 'link', 'del', dev], { stdio: 'ignore' })
  spawnSync('ip', ['-n', netns, 'route', 'flush', 'root', NETWORK], { stdio: 'ignore' })
  spawnSync('ip', ['-n', netns, 'route', 'flush', 'root', '10.244.0.0/16'], { stdio: 'ignore' })
}

interface Spawned { proc: NsProcess; subnetFile: string }

function spawnDaemon(bed: Testbed, host: TestHost, daemon: Daemon, nodeName: string, netConf: string, kubeconfig: string, tag: string): Spawned {
  const subnetFile = join(bed.workDir, `${tag}-subnet.env`)
  rmSync(subnetFile, { force: true })
  const common = ['--kube-subnet-mgr', `--kubeconfig-file=${kubeconfig}`, `--net-config-path=${netConf}`, '--iface=eth0', `--subnet-file=${subnetFile}`]
  const argv = daemon === 'weftd' ? [process.execPath, WEFTD, ...common] : [FLANNELD, ...common]
  // The service environment, as a DaemonSet gives it (NODE_NAME from the downward API).
  const env = { ...SERVICE_ENV, NODE_NAME: nodeName }
  return { proc: bed.spawn(host.netns, argv, { env, keepBytes: 8192 }), subnetFile }
}

async function until(probe: () => boolean, capMs: number, everyMs = 20): Promise<boolean> {
  const deadline = performance.now() + capMs
  while (performance.now() < deadline) {
    if (probe()) return true
    await sleep(everyMs)
  }
  return false
}

interface PresentResult { daemon: Daemon; backend: Backend; nodes: number; runsMs: number[]; medianMs: number; capMs: number; rssMiB: number[]; rssLateMiB?: RssParts; requestsPerNodeEvent?: number }

async function nodesPresent(bed: Testbed, kubeconfig: string, daemon: Daemon, backend: Backend, nodes: number): Promise<PresentResult> {
  const host = bed.hosts[0]!
  const netConf = join(bed.workDir, `net-conf-${backend}.json`)
  writeFileSync(netConf, JSON.stringify({ Network: NETWORK, Backend: { Type: backend } }))
  const runs = nodes >= 5000 ? 1 : RUNS
  const runsMs: number[] = []
  const rss: number[] = []
  let requestsPerNodeEvent: number | undefined
  let rssLate: RssParts | undefined
  for (let r = 0; r < runs; r++) {
    cleanHost(host.netns)
    const t0 = performance.now()
    const d = spawnDaemon(bed, host, daemon, SELF, netConf, kubeconfig, `present-${daemon}-${backend}-${nodes}-${r}`)
    try {
      const done = await until(() => !d.proc.isRunning() || countRoutes(host.netns) >= nodes, CAP_MS, 25)
      if (!d.proc.isRunning()) throw new Error(`${daemon} exited: ${d.proc.output()}`)
      runsMs.push(done ? round(performance.now() - t0) : Infinity)
      await sleep(5000)
      rss.push(rssMiB(d.proc.pid))
      if (r === runs - 1 && done && nodes < 5000) requestsPerNodeEvent = await requestsPerEvent(bed, host, backend, nodes)
      // Still low once the daemon has worked on (node events, timers), not only right after a trim.
      if (r === runs - 1 && done) { await sleep(LATE_MS); rssLate = rssParts(d.proc.pid) }
    } finally {
      await d.proc.stop(5000)
    }
  }
  const medianMs = median(runsMs)
  const shown = Number.isFinite(medianMs) ? `${medianMs} ms` : `not all within ${CAP_MS / 1000} s`
  console.log(`${daemon} ${backend}: ${nodes} nodes present → all routes from spawn: median ${shown} (${runsMs.join(', ')}); RSS ${rss.join(', ')} MiB${rssLate ? ` (${LATE_MS / 1000} s later: ${rssLate.total} MiB, anon ${rssLate.anon} + file ${rssLate.file})` : ''}${requestsPerNodeEvent === undefined ? '' : `; ${requestsPerNodeEvent} API requests per node event`}`)
  // JSON has no Infinity: a run that did not finish within the cap is null, with the cap beside it.
  return { daemon, backend, nodes, runsMs, medianMs, capMs: CAP_MS, rssMiB: rss, ...(rssLate ? { rssLateMiB: rssLate } : {}), ...(requestsPerNodeEvent === undefined ? {} : { requestsPerNodeEvent }) }
}

/** 100 node events (50 added, 25 changed, 25 deleted) while the daemon runs: API requests it made. */
async function requestsPerEvent(bed: Testbed, host: TestHost, backend: Backend, nodes: number): Promise<number> {
  const admin = bed.kubeApi!.admin
  await admin.resetRequestCounts()
  const added = Array.from({ length: 50 }, (_, k) => peerNode(nodes + 1 + k, backend))
  await admin.createNodes(added)
  for (let i = 1; i <= 25; i++) await admin.patchNode(`peer-${i}`, { metadata: { annotations: { [`${P}public-ip`]: `10.201.100.${i}` } } }, { subresource: 'status' })
  for (let i = 26; i <= 50; i++) await admin.deleteNode(`peer-${i}`)
  await until(() => countRoutes(host.netns) === nodes + 25, 10_000)
  await sleep(1000)
  const counts = await admin.requestCounts()
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  // Put the cluster back as it was for the next run.
  for (const n of added) await admin.deleteNode(n.name)
  for (let i = 1; i <= 50; i++) {
    if (i <= 25) await admin.patchNode(`peer-${i}`, { metadata: { annotations: peerNode(i, backend).annotations! } }, { subresource: 'status' })
    else await admin.createNode(peerNode(i, backend))
  }
  return round(total / 100)
}

interface JoinResult { mode: string; runsMs: number[]; medianMs: number }

/** 7 hosts running; the 8th's daemon is spawned: time until its route is on all 7. */
async function join8(bed: Testbed, mode: 'weftd-kube' | 'flanneld-kube' | 'weftd-etcd', kubeconfig: string): Promise<JoinResult> {
  const admin = bed.kubeApi!.admin
  const [joiner, ...others] = [bed.hosts[7]!, ...bed.hosts.slice(0, 7)]
  const daemon: Daemon = mode.startsWith('flanneld') ? 'flanneld' : 'weftd'
  const netConf = join(bed.workDir, 'net-conf-join.json')
  writeFileSync(netConf, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } }))
  for (const h of bed.hosts) cleanHost(h.netns)
  const start = (host: TestHost, nodeName: string, tag: string): Spawned => {
    if (mode !== 'weftd-etcd') return spawnDaemon(bed, host, daemon, nodeName, netConf, kubeconfig, tag)
    const subnetFile = join(bed.workDir, `${tag}-subnet.env`)
    rmSync(subnetFile, { force: true })
    return { proc: bed.spawn(host.netns, [process.execPath, WEFTD, `--etcd-endpoints=${bed.etcdEndpoint}`, '--iface=eth0', `--subnet-file=${subnetFile}`], { env: SERVICE_ENV, keepBytes: 8192 }), subnetFile }
  }
  const running = others.map((h) => start(h, h.name, `join-${mode}-${h.name}`))
  const runsMs: number[] = []
  try {
    if (!(await until(() => running.every((d) => existsSync(d.subnetFile)), 30_000))) throw new Error(`${mode}: the 7 hosts did not start: ${running.map((d) => d.proc.output()).join('\n')}`)
    await sleep(1500)
    for (let r = 0; r < RUNS; r++) {
      const name = `joiner-${mode}-${r}`
      const cidr = `10.244.${200 + r}.0/24`
      if (mode !== 'weftd-etcd') await admin.createNode({ name, podCIDR: cidr, annotations: { 'node.alpha.kubernetes.io/ttl': '0' } })
      cleanHost(joiner.netns)
      const t0 = performance.now()
      const d = start(joiner, name, `join-${mode}-${r}`)
      try {
        let subnet = mode === 'weftd-etcd' ? '' : cidr
        const routed = await until(() => {
          if (!subnet) {
            if (!existsSync(d.subnetFile)) return false
            const m = /FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/(\d+)/.exec(readFileSync(d.subnetFile, 'utf8'))
            if (!m) return false
            subnet = `${m[1]}.0/${m[2]}`
          }
          return others.every((h) => spawnSync('ip', ['-n', h.netns, 'route', 'show', 'exact', subnet], { encoding: 'utf8' }).stdout.trim() !== '')
        }, 30_000, 5)
        runsMs.push(routed ? round(performance.now() - t0) : Infinity)
        await d.proc.stop(5000)
        // Withdraw the joiner, so the next repetition's route is new on the others.
        if (mode === 'weftd-etcd') {
          const leases = await bed.etcdctl('get', '--prefix', '--keys-only', '/coreos.com/network/subnets/')
          const key = leases.split('\n').find((k) => k.includes(subnet.replace('/', '-')))
          if (key) await bed.etcdctl('del', key)
        } else {
          await admin.deleteNode(name)
        }
        await until(() => others.every((h) => spawnSync('ip', ['-n', h.netns, 'route', 'show', 'exact', subnet], { encoding: 'utf8' }).stdout.trim() === ''), 10_000)
      } finally {
        await d.proc.stop(5000)
      }
    }
  } finally {
    await Promise.all(running.map((d) => d.proc.stop(5000)))
  }
  const medianMs = median(runsMs)
  console.log(`join (${mode}, vxlan, 8th host): route on the 7 others from spawn: median ${medianMs} ms (${runsMs.join(', ')})`)
  return { mode, runsMs, medianMs }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('kube bench: skipped (needs root for network namespaces)')
    return
  }
  const { createTestbed } = await import('../test/helpers/testbed.ts')
  const daemons: Daemon[] = FLANNELD && !process.env.WEFT_BENCH_KUBE_WEFT_ONLY ? ['weftd', 'flanneld'] : ['weftd']
  if (!FLANNELD) console.log('kube bench: no flanneld binary (WEFT_BENCH_FLANNELD); weftd figures only')
  const bed = await createTestbed({ hosts: 8, etcd: true, kubeApi: { tuning: { bookmarkIntervalMs: 60_000 } } })
  const present: PresentResult[] = []
  const joins: JoinResult[] = []
  try {
    const admin = bed.kubeApi!.admin
    const kubeconfig = bed.kubeApi!.kubeconfig({ tokenFile: true })
    // Kubelet-registered nodes (the joiner's podCIDR is set per repetition).
    await admin.createNodes([
      ...bed.hosts.slice(0, 7).map((h, i) => ({ name: h.name, podCIDR: `10.244.${i + 1}.0/24`, annotations: { 'node.alpha.kubernetes.io/ttl': '0' } })),
      { name: SELF, podCIDR: '10.64.0.0/24', annotations: { 'node.alpha.kubernetes.io/ttl': '0' } },
    ])
    await bed.putNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan' } })
    // host-gw needs every peer's public IP on-link.
    await bed.hosts[0]!.exec('ip', 'addr', 'add', '10.201.255.254/16', 'dev', 'eth0')

    const modes: Array<'weftd-kube' | 'flanneld-kube' | 'weftd-etcd'> = ['weftd-kube', ...(FLANNELD ? ['flanneld-kube' as const] : []), 'weftd-etcd']
    if (!process.env.WEFT_BENCH_KUBE_SKIP_JOIN) for (const mode of modes) joins.push(await join8(bed, mode, kubeconfig))

    let created = 0
    let peersBackend: Backend = 'vxlan'
    for (const backend of ['vxlan', 'host-gw'] as const) {
      if (backend !== peersBackend) {
        // The peers' annotations follow the backend under test.
        for (let i = 1; i <= created; i++) await admin.patchNode(`peer-${i}`, { metadata: { annotations: peerNode(i, backend).annotations! } }, { subresource: 'status' })
        peersBackend = backend
      }
      for (const size of SIZES) {
        for (let i = created + 1; i <= size; i += 500) await admin.createNodes(Array.from({ length: Math.min(500, size - i + 1) }, (_, k) => peerNode(i + k, backend)))
        created = Math.max(created, size)
        // Larger sizes first leave extra peers behind: measure the sizes in increasing order.
        for (const daemon of daemons) present.push(await nodesPresent(bed, kubeconfig, daemon, backend, size))
      }
      if (SIZES.length > 1 && backend === 'vxlan') {
        // host-gw starts again from the smallest size.
        for (let i = (SIZES[0] ?? 0) + 1; i <= created; i++) await admin.deleteNode(`peer-${i}`)
        created = SIZES[0] ?? 0
      }
    }
  } finally {
    await bed.destroy()
  }
  const ratio = (a: number | undefined, b: number | undefined): number | null => (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) ? Math.round((a / b) * 1000) / 1000 : null)
  const find = (d: Daemon, b: Backend, n: number): PresentResult | undefined => present.find((p) => p.daemon === d && p.backend === b && p.nodes === n)
  const ratios = SIZES.flatMap((n) => (['vxlan', 'host-gw'] as const).map((b) => ({ nodes: n, backend: b, weftOverFlanneld: ratio(find('weftd', b, n)?.medianMs, find('flanneld', b, n)?.medianMs) })))
  const joinRatio = ratio(joins.find((j) => j.mode === 'weftd-kube')?.medianMs, joins.find((j) => j.mode === 'flanneld-kube')?.medianMs)
  for (const r of ratios) if (r.weftOverFlanneld !== null) console.log(`ratio weft/flanneld, ${r.nodes} nodes ${r.backend}: ${r.weftOverFlanneld}`)
  if (joinRatio !== null) console.log(`ratio weft/flanneld, kube join: ${joinRatio}`)
  const result = {
    date: new Date().toISOString(),
    loadAvg1m: round(loadavg()[0] ?? 0),
    flanneld: FLANNELD ? spawnSync(FLANNELD, ['--version'], { encoding: 'utf8' }).stderr.trim() : null,
    setup: 'daemon spawned with ip netns exec in the service environment (+NODE_NAME), default flags; API emulator in its own namespace across the bridge, TLS + token file',
    nodesPresent: present,
    ratios,
    join: joins,
    joinRatioWeftOverFlanneld: joinRatio,
    targets: { nodesPresent1000Ms: '< 1000 and ≤ 1/3 of flanneld', rssMiB: 50, joinRatio: '≤ 0.5' },
  }
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true })
  writeFileSync(join(REPO, 'bench', 'results', 'kube.json'), JSON.stringify(result, null, 2) + '\n')
}

await main()
