/**
 * An N-host testbed on one machine, for the e2e tier and the demo (needs root).
 *
 * Layout (nothing is ever added to the root namespace):
 * - `<prefix>-sw`: the "switch" namespace, one Linux bridge `br<s>` per L2 segment.
 * - `<prefix>-h<n>`: one namespace per host, a veth into the switch named `eth0` inside the host,
 *   underlay `10.200.<seg>.<n>/24` (and `fd00:200:<seg>::<n>/64` with `ipv6`), lo up, forwarding on.
 * - `<prefix>-rt`: only when `segments > 1`: a router with leg `eth<s>` = `.254` in each segment;
 *   hosts get a default route to it. With one segment there is no default route at all, so no
 *   testbed traffic can ever leave the machine.
 * - `<prefix>-etcd`: etcd at `10.200.0.250:2379` (IPv4 only) on segment 0, reachable from every host.
 *
 * etcd access from the test process: the root namespace has no route into the testbed, so
 * {@link Testbed.etcdctl} runs the Debian `etcdctl` (API v3) inside the etcd namespace.
 *
 * Cleanup: {@link Testbed.destroy} is idempotent; a synchronous fallback also runs on process
 * exit and on SIGINT/SIGTERM, so a failing test or Ctrl-C never leaves namespaces behind.
 */
import { join } from 'node:path'
import { formatIp, parseIp } from '../../src/ip/ip.ts'
import { startEtcd, type EtcdServer } from './etcd-server.ts'
import { startKubeEmulator, type KubeApiServer, type StartKubeEmulatorOptions } from './kube-apiserver.ts'
import { ip, nsExec, type NsProcess, type RunOptions, type RunResult, type SpawnOptions } from './netns.ts'
import { BedState } from './testbed-state.ts'

export interface TestbedOptions {
  /** Number of hosts (1..200). */
  hosts: number
  /** L2 segments joined by a router namespace (default 1, max 50). */
  segments?: number
  /** Segment of each host (index = host index); default: contiguous blocks, e.g. 3 hosts/2 segments = [0, 0, 1]. */
  hostSegments?: readonly number[]
  /** Also give every underlay interface an IPv6 address. */
  ipv6?: boolean
  /** Namespace name prefix; default `wt<pid base36>t<counter>`. Must be unique per run. */
  prefix?: string
  /** Start etcd (default true). */
  etcd?: boolean
  /**
   * Start the Kubernetes API emulator in `<prefix>-kapi` at `10.200.0.251:6443` (HTTPS), a
   * process of its own controlled over a unix socket; `true` for the defaults.
   */
  kubeApi?: boolean | Omit<StartKubeEmulatorOptions, 'netns' | 'host' | 'port'>
}

/** One emulated host: a namespace with `eth0` on the underlay. */
export interface TestHost {
  /** Short name: `h1`, `h2`, ... */
  readonly name: string
  /** 0-based index into {@link Testbed.hosts}. */
  readonly index: number
  readonly netns: string
  readonly segment: number
  /** Underlay interface name inside the host namespace. */
  readonly iface: 'eth0'
  /** Underlay IPv4 address, e.g. 10.200.0.1 */
  readonly underlayIp: string
  /** Underlay IPv6 address when the testbed has `ipv6`, e.g. fd00:200:0::1 */
  readonly underlayIpv6?: string
  /** Runs a command in the host; throws {@link CommandError} on failure. */
  exec(...argv: string[]): Promise<RunResult>
  /** Runs a command in the host with options (timeout, allowFailure, env, input). */
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>
  /** Starts a long-running process in the host; stopped by {@link Testbed.destroy}. */
  spawn(argv: readonly string[], opts?: SpawnOptions): NsProcess
  /** Creates an extra namespace `<host netns>-<suffix>` (e.g. a pod) removed with the testbed. */
  addNamespace(suffix: string): Promise<string>
  /** The testbed this host belongs to. */
  readonly testbed: Testbed
}

/** A lease as read from etcd by {@link Testbed.getLeases}. */
export interface EtcdLease {
  /** e.g. 10.5.72.0/24 */
  subnet: string
  ipv6Subnet?: string
  /** The stored JSON value (PublicIP, BackendType, BackendData, ...). */
  attrs: Record<string, unknown>
  /** etcd lease ID (decimal string), '0' when none. */
  etcdLease: string
}

export interface Testbed {
  readonly prefix: string
  readonly hosts: readonly TestHost[]
  readonly segments: number
  readonly ipv6: boolean
  /** e.g. http://10.200.0.250:2379 ('' when started with etcd: false). */
  readonly etcdEndpoint: string
  readonly etcdNetns: string
  readonly switchNetns: string
  /** Set only when segments > 1. */
  readonly routerNetns?: string
  /** Scratch directory for this testbed (subnet files, logs); removed by destroy. */
  readonly workDir: string
  /** The etcd server, for stop/start/compact in tests. */
  readonly etcd?: EtcdServer
  /** The Kubernetes API emulator (with `kubeApi`): URL, tokens, kubeconfig files, admin API. */
  readonly kubeApi?: KubeApiServer
  /** Every namespace created so far (hosts, switch, router, etcd, extras). */
  namespaces(): string[]
  /** Runs a command in any testbed namespace; throws on failure. */
  exec(netns: string, ...argv: string[]): Promise<RunResult>
  /** Starts a long-running process in any namespace; stopped by destroy. */
  spawn(netns: string, argv: readonly string[], opts?: SpawnOptions): NsProcess
  /** Runs `etcdctl --endpoints=<etcd> args...` (API v3) in the etcd namespace; returns stdout. */
  etcdctl(...args: string[]): Promise<string>
  /** Writes flannel's network config to `<etcdPrefix>/config` (default prefix /coreos.com/network). */
  putNetworkConfig(config: string | object, etcdPrefix?: string): Promise<void>
  /** Reads the subnet leases under `<etcdPrefix>/subnets/`. */
  getLeases(etcdPrefix?: string): Promise<EtcdLease[]>
  /** Stops processes and etcd, deletes every namespace and the work dir. Idempotent. */
  destroy(): Promise<void>
}

const ETCD_V4 = '10.200.0.250'
export const KUBE_API_V4 = '10.200.0.251'
const ROUTER_HOST = 254
let counter = 0

/** Default per-run prefix: `wt` + pid and a per-process counter in base36. */
export function defaultPrefix(): string {
  return `wt${process.pid.toString(36)}t${(counter++).toString(36)}`
}

/** IPv4 underlay address of host number `n` (1-based) in `segment`. */
export const underlayV4 = (segment: number, n: number): string => `10.200.${segment}.${n}`
/** IPv6 underlay address of host number `n` (1-based) in `segment`: the decimal digits read as hex, so h3 = ...::3, router = ...::254 (canonical text). */
export const underlayV6 = (segment: number, n: number): string => formatIp(parseIp(`fd00:200:${segment}::${n}`)!)

/** Builds a testbed; on any setup failure everything created so far is removed before rethrowing. */
export async function createTestbed(opts: TestbedOptions): Promise<Testbed> {
  const nHosts = opts.hosts
  const segments = opts.segments ?? 1
  if (!Number.isInteger(nHosts) || nHosts < 1 || nHosts > 200) throw new Error(`hosts must be an integer in 1..200: ${nHosts}`)
  if (!Number.isInteger(segments) || segments < 1 || segments > 50) throw new Error(`segments must be an integer in 1..50: ${segments}`)
  const hostSegments = opts.hostSegments ?? Array.from({ length: nHosts }, (_, i) => Math.floor((i * segments) / nHosts))
  if (hostSegments.length !== nHosts || hostSegments.some((s) => !Number.isInteger(s) || s < 0 || s >= segments)) {
    throw new Error(`hostSegments must give a segment in 0..${segments - 1} for each of the ${nHosts} hosts`)
  }
  const prefix = opts.prefix ?? defaultPrefix()
  if (!/^[a-z0-9]{1,20}$/.test(prefix)) throw new Error(`prefix must be 1..20 lower-case letters or digits: ${prefix}`)
  // Options are checked first so a mistake reads the same with or without root.
  if (process.getuid?.() !== 0) throw new Error('createTestbed needs root (network namespaces)')
  const state = new BedState(prefix)
  try {
    return await build(state, { ...opts, hosts: nHosts, segments, hostSegments })
  } catch (err) {
    await state.destroy()
    throw err
  }
}

type Resolved = TestbedOptions & { segments: number; hostSegments: readonly number[] }

async function build(state: BedState, opts: Resolved): Promise<Testbed> {
  const { prefix } = state
  const ipv6 = opts.ipv6 === true
  const sw = await state.addNs(`${prefix}-sw`)
  const inSw = (...args: string[]): Promise<string> => ip('-n', sw, ...args)
  for (let s = 0; s < opts.segments; s++) {
    // STP off: ports forward at once; no multicast snooping surprises for vxlan flooding tests.
    await inSw('link', 'add', `br${s}`, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0')
    await inSw('link', 'set', `br${s}`, 'up')
  }
  const sysctl = (ns: string, ...kv: string[]): Promise<RunResult> => nsExec(ns, ['sysctl', '-qw', ...kv])
  const forwarding = ipv6 ? ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'] : ['net.ipv4.ip_forward=1']

  // Plugs namespace `ns` into segment `seg`: switch port `port`, interface `iface` inside `ns`.
  const plug = async (ns: string, iface: string, port: string, seg: number, n: number): Promise<void> => {
    await inSw('link', 'add', port, 'type', 'veth', 'peer', 'name', iface, 'netns', ns)
    await inSw('link', 'set', port, 'master', `br${seg}`, 'up')
    await ip('-n', ns, 'addr', 'add', `${underlayV4(seg, n)}/24`, 'dev', iface)
    // nodad: the address is usable at once instead of after ~2 s of duplicate detection.
    if (ipv6) await ip('-n', ns, 'addr', 'add', `${underlayV6(seg, n)}/64`, 'dev', iface, 'nodad')
    await ip('-n', ns, 'link', 'set', iface, 'up')
  }
  const defaultVia = async (ns: string, seg: number): Promise<void> => {
    await ip('-n', ns, 'route', 'add', 'default', 'via', underlayV4(seg, ROUTER_HOST))
    if (ipv6) await ip('-n', ns, '-6', 'route', 'add', 'default', 'via', underlayV6(seg, ROUTER_HOST))
  }

  let routerNetns: string | undefined
  if (opts.segments > 1) {
    routerNetns = await state.addNs(`${prefix}-rt`)
    for (let s = 0; s < opts.segments; s++) await plug(routerNetns, `eth${s}`, `rt${s}`, s, ROUTER_HOST)
    await sysctl(routerNetns, ...forwarding)
  }

  const bed = {} as Testbed
  const hosts: TestHost[] = []
  for (let i = 0; i < opts.hosts; i++) {
    const seg = opts.hostSegments[i]!
    const n = i + 1
    const netns = await state.addNs(`${prefix}-h${n}`)
    await plug(netns, 'eth0', `h${n}`, seg, n)
    await sysctl(netns, ...forwarding)
    if (routerNetns) await defaultVia(netns, seg)
    hosts.push({
      name: `h${n}`,
      index: i,
      netns,
      segment: seg,
      iface: 'eth0',
      underlayIp: underlayV4(seg, n),
      ...(ipv6 ? { underlayIpv6: underlayV6(seg, n) } : {}),
      exec: (...argv) => nsExec(netns, argv),
      run: (argv, o) => nsExec(netns, argv, o),
      spawn: (argv, o) => state.spawn(netns, argv, o),
      addNamespace: (suffix) => state.addNs(`${netns}-${suffix}`),
      testbed: bed,
    })
  }

  const etcdNetns = `${prefix}-etcd`
  let etcd: EtcdServer | undefined
  if (opts.etcd !== false) {
    await state.addNs(etcdNetns)
    await plug(etcdNetns, 'eth0', 'etcd', 0, 250)
    if (routerNetns) await defaultVia(etcdNetns, 0)
    etcd = await startEtcd({ netns: etcdNetns, host: ETCD_V4, port: 2379, dataDir: join(state.workDir, 'etcd') })
    state.etcd = etcd
  }
  const endpoint = etcd?.endpoint ?? ''
  let kubeApi: KubeApiServer | undefined
  if (opts.kubeApi) {
    const kapiNetns = await state.addNs(`${prefix}-kapi`)
    await plug(kapiNetns, 'eth0', 'kapi', 0, 251)
    if (routerNetns) await defaultVia(kapiNetns, 0)
    kubeApi = await startKubeEmulator({ ...(opts.kubeApi === true ? {} : opts.kubeApi), netns: kapiNetns, host: KUBE_API_V4, port: 6443 })
    state.kubeApi = kubeApi
  }

  const etcdctl = async (...args: string[]): Promise<string> => {
    if (!etcd) throw new Error('etcdctl: testbed was created with etcd: false')
    const r = await nsExec(etcdNetns, ['etcdctl', `--endpoints=${endpoint}`, '--dial-timeout=3s', '--command-timeout=5s', ...args], { env: { ETCDCTL_API: '3' } })
    return r.stdout
  }

  Object.assign(bed, {
    prefix,
    hosts,
    segments: opts.segments,
    ipv6,
    etcdEndpoint: endpoint,
    etcdNetns,
    switchNetns: sw,
    routerNetns,
    workDir: state.workDir,
    etcd,
    kubeApi,
    namespaces: () => [...state.netns],
    exec: (netns: string, ...argv: string[]) => nsExec(netns, argv),
    spawn: (netns: string, argv: readonly string[], o?: SpawnOptions) => state.spawn(netns, argv, o),
    etcdctl,
    putNetworkConfig: async (config: string | object, etcdPrefix = '/coreos.com/network') => {
      const text = typeof config === 'string' ? config : JSON.stringify(config)
      await etcdctl('put', `${etcdPrefix}/config`, text)
    },
    getLeases: async (etcdPrefix = '/coreos.com/network') => parseLeases(await etcdctl('get', '--prefix', `${etcdPrefix}/subnets/`, '-w', 'json')),
    destroy: () => state.destroy(),
  } satisfies Testbed)
  return bed
}

/** Parses `etcdctl get -w json` output of subnet keys like `10.5.72.0-24` or `10.5.72.0-24&fd00::-64`. */
export function parseLeases(json: string): EtcdLease[] {
  const doc = JSON.parse(json) as { kvs?: Array<{ key: string; value: string; lease?: number | string }> }
  const leases: EtcdLease[] = []
  for (const kv of doc.kvs ?? []) {
    const key = Buffer.from(kv.key, 'base64').toString('utf8')
    const parts = (key.split('/').pop() ?? '').split('&').map((p) => {
      const dash = p.lastIndexOf('-')
      return `${p.slice(0, dash)}/${p.slice(dash + 1)}`
    })
    let attrs: Record<string, unknown>
    try {
      attrs = JSON.parse(Buffer.from(kv.value, 'base64').toString('utf8')) as Record<string, unknown>
    } catch {
      attrs = {}
    }
    const v4 = parts.find((p) => !p.includes(':'))
    const v6 = parts.find((p) => p.includes(':'))
    leases.push({ subnet: v4 ?? '', ...(v6 ? { ipv6Subnet: v6 } : {}), attrs, etcdLease: BigInt(kv.lease ?? 0).toString() })
  }
  return leases
}
