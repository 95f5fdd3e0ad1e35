/** Starts the built weftd (dist/, via bin/weftd) inside a testbed host with flanneld-style flags. */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Testbed, TestHost } from './testbed.ts'
import { pingUntil, type NsProcess } from './netns.ts'
import { statSync } from 'node:fs'
import { addPod, waitForSubnetEnv, type Pod } from './pods.ts'

export const REPO = fileURLToPath(new URL('../..', import.meta.url))
export const WEFTD = join(REPO, 'bin', 'weftd')
export const WEFT = join(REPO, 'bin', 'weft')

export interface WeftdRun {
  readonly proc: NsProcess
  readonly subnetFile: string
  readonly host: TestHost
}

/** Default flags: this host's eth0, a per-host subnet file, no FORWARD rules unless asked. */
export function startWeftd(bed: Testbed, host: TestHost, extra: readonly string[] = [], opts: { subnetFile?: string; env?: NodeJS.ProcessEnv } = {}): WeftdRun {
  const subnetFile = opts.subnetFile ?? join(bed.workDir, `${host.name}-subnet.env`)
  const store = bed.etcdEndpoint ? [`--etcd-endpoints=${bed.etcdEndpoint}`] : []
  const proc = host.spawn([process.execPath, WEFTD, ...store, '--iface=eth0', `--subnet-file=${subnetFile}`, '--log-format=human', ...extra], opts.env && { env: opts.env })
  return { proc, subnetFile, host }
}

export async function startWeftdReady(bed: Testbed, host: TestHost, extra: readonly string[] = [], opts: { subnetFile?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<WeftdRun & { env: Record<string, string> }> {
  const subnetFile = opts.subnetFile ?? join(bed.workDir, `${host.name}-subnet.env`)
  // A restart finds the previous run's file: wait for a new one (weftd renames a fresh inode in).
  const before = inode(subnetFile)
  const run = startWeftd(bed, host, extra, { subnetFile, ...(opts.env && { env: opts.env }) })
  try {
    await eventually(`a new ${subnetFile}`, async () => {
      if (!run.proc.isRunning()) throw new Error('weftd exited before writing its subnet file')
      const now = inode(subnetFile)
      return now !== undefined && now !== before
    }, opts.timeoutMs ?? 20_000)
    const env = await waitForSubnetEnv(host, run.subnetFile, { timeoutMs: 1000 })
    return { ...run, env }
  } catch (err) {
    throw new Error(`${(err as Error).message}\nweftd output:\n${run.proc.output()}`, { cause: err })
  }
}

/** Resolves when `cond` holds, polling every `everyMs`; throws with `what` after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

function inode(path: string): number | undefined {
  try {
    return statSync(path).ino
  } catch {
    return undefined
  }
}

/** A weftd started on a host with its subnet.env read, as {@link startCluster} returns it. */
export type ReadyWeftd = WeftdRun & { env: Record<string, string> }

/** Starts weftd on every host of the testbed concurrently and waits until each wrote subnet.env. */
export async function startCluster(bed: Testbed, extra: readonly string[] = []): Promise<ReadyWeftd[]> {
  return Promise.all(bed.hosts.map((h) => startWeftdReady(bed, h, extra)))
}

/** The etcd key of a lease subnet like 10.5.72.0/24 (flannel's `10.5.72.0-24`). */
export function leaseKey(subnet: string, ipv6Subnet?: string, etcdPrefix = '/coreos.com/network'): string {
  const name = (s: string): string => s.replace('/', '-')
  return `${etcdPrefix}/subnets/${name(subnet)}${ipv6Subnet ? `&${name(ipv6Subnet)}` : ''}`
}

/**
 * Polls `probe` every `everyMs` until it returns true and resolves with the elapsed ms since
 * `t0` (default: the call); throws naming `what` after `timeoutMs`. For "within 1 s" figures.
 */
export async function measureUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 5000, t0 = Date.now(), everyMs = 10): Promise<number> {
  await eventually(what, async () => (await probe()) || undefined, timeoutMs, everyMs)
  return Date.now() - t0
}

/** One pod per started weftd (named `p<n>`), addressed from its subnet.env (IPv6 too when present). */
export async function addPodPerHost(runs: readonly ReadyWeftd[], opts: { ipv6?: boolean } = {}): Promise<Pod[]> {
  return Promise.all(runs.map((r, i) => addPod(r.host, {
    name: `p${i + 1}`,
    subnet: r.env.FLANNEL_SUBNET!,
    mtu: Number(r.env.FLANNEL_MTU),
    ...(opts.ipv6 ? { ipv6Subnet: r.env.FLANNEL_IPV6_SUBNET! } : {}),
  })))
}

/**
 * Pings every ordered pair of pods (`ping -6` for family 6) concurrently, each until it answers
 * or `timeoutMs`; resolves with the failed pairs as `h1->h2` (empty = full mesh).
 */
export async function pingAllPairs(pods: readonly Pod[], family: 4 | 6 = 4, timeoutMs = 10_000): Promise<string[]> {
  const pairs = pods.flatMap((a) => pods.filter((b) => b !== a).map((b) => [a, b] as const))
  const results = await Promise.all(pairs.map(async ([a, b]) => {
    const r = await pingUntil(a.netns, family === 4 ? b.ip : b.ipv6!, { timeoutMs, intervalMs: 200 })
    return r.ok ? undefined : `${a.host.name}->${b.host.name}`
  }))
  return results.filter((r): r is string => r !== undefined)
}

/** Runs `ip -j <args>` (or `bridge -j` with `tool`) in a host and parses the JSON (empty output = []). */
export async function ipJson<T = Record<string, unknown>>(host: TestHost, args: readonly string[], tool: 'ip' | 'bridge' = 'ip'): Promise<T[]> {
  const out = (await host.exec(tool, '-j', ...args)).stdout.trim()
  return out === '' ? [] : JSON.parse(out) as T[]
}

/** GETs a loopback URL from inside the host's namespace. */
export async function fetchIn(host: TestHost, url: string): Promise<{ status: number; type: string; body: string }> {
  const script = `fetch(${JSON.stringify(url)}).then(async r => process.stdout.write(JSON.stringify({ status: r.status, type: r.headers.get('content-type'), body: await r.text() })))`
  return JSON.parse((await host.run([process.execPath, '-e', script])).stdout) as { status: number; type: string; body: string }
}
