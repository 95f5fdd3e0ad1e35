/**
 * "Pods" behind a `cni0` bridge on a testbed host, wired the way flannel's CNI bridge setup does:
 * cni0 holds the first usable address of the host's subnet, each pod is a namespace with `eth0`
 * (a veth into cni0) and a default route via cni0's address, so a pod can only reach its own
 * host, which is inside the testbed.
 */
import { readFile } from 'node:fs/promises'
import { formatIp, ipAdd, netIp, parseIpWithPrefix, type IpNet } from '../../src/ip/ip.ts'
import type { RunOptions, RunResult } from './netns.ts'
import { nsExec, ip } from './netns.ts'
import type { TestHost } from './testbed.ts'

export interface PodOptions {
  /** Pod name, 1..10 lower-case letters/digits; the namespace is `<host netns>-<name>`. */
  name: string
  /** The host's FLANNEL_SUBNET, e.g. 10.5.72.1/24 (host bits are ignored). */
  subnet: string
  /** MTU for cni0 and the pod veth (the host's FLANNEL_MTU). */
  mtu: number
  /** The host's FLANNEL_IPV6_SUBNET, e.g. fd00:10:5:48::1/64. */
  ipv6Subnet?: string
}

export interface Pod {
  readonly name: string
  readonly host: TestHost
  readonly netns: string
  /** Pod IPv4 address (second usable of the subnet for the first pod, then third, ...). */
  readonly ip: string
  /** cni0's IPv4 address, the pod's default gateway. */
  readonly gateway: string
  readonly ipv6?: string
  readonly gatewayV6?: string
  /** Runs a command in the pod; throws on failure. */
  exec(...argv: string[]): Promise<RunResult>
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>
}

// Pods created per host, so the next pod gets the next address.
const podCount = new WeakMap<TestHost, number>()

function subnetOf(text: string, field: string): IpNet {
  const parsed = parseIpWithPrefix(text)
  if (!parsed) throw new Error(`${field} must be an address with prefix like 10.5.72.1/24: ${text}`)
  return parsed.net
}

async function linkExists(netns: string, name: string): Promise<boolean> {
  const r = await nsExec(netns, ['ip', 'link', 'show', 'dev', name], { allowFailure: true })
  return r.code === 0
}

/** Creates cni0 on the host if needed (address, MTU, up) and a pod namespace attached to it. */
export async function addPod(host: TestHost, opts: PodOptions): Promise<Pod> {
  if (!/^[a-z0-9]{1,10}$/.test(opts.name)) throw new Error(`pod name must be 1..10 lower-case letters or digits: ${opts.name}`)
  if (!Number.isInteger(opts.mtu) || opts.mtu < 576 || opts.mtu > 65535) throw new Error(`pod mtu must be an integer in 576..65535: ${opts.mtu}`)
  const v4 = subnetOf(opts.subnet, 'subnet')
  const v6 = opts.ipv6Subnet === undefined ? undefined : subnetOf(opts.ipv6Subnet, 'ipv6Subnet')
  const nth = (podCount.get(host) ?? 0) + 1
  podCount.set(host, nth)
  const gw = formatIp(ipAdd(netIp(v4), 1n))
  const podIp = formatIp(ipAdd(netIp(v4), BigInt(nth + 1)))
  const gw6 = v6 && formatIp(ipAdd(netIp(v6), 1n))
  const podIp6 = v6 && formatIp(ipAdd(netIp(v6), BigInt(nth + 1)))
  const mtu = String(opts.mtu)
  const inHost = (...args: string[]): Promise<string> => ip('-n', host.netns, ...args)

  if (!(await linkExists(host.netns, 'cni0'))) {
    await inHost('link', 'add', 'cni0', 'type', 'bridge', 'stp_state', '0')
    await inHost('link', 'set', 'cni0', 'mtu', mtu)
    await inHost('addr', 'add', `${gw}/${v4.prefix}`, 'dev', 'cni0')
    if (v6) {
      await inHost('addr', 'add', `${gw6}/${v6.prefix}`, 'dev', 'cni0', 'nodad')
      await nsExec(host.netns, ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'])
    }
    await inHost('link', 'set', 'cni0', 'up')
  }

  const netns = await host.addNamespace(opts.name)
  const hostSide = `veth${opts.name}`.slice(0, 15)
  const inPod = (...args: string[]): Promise<string> => ip('-n', netns, ...args)
  await inHost('link', 'add', hostSide, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', netns)
  await inHost('link', 'set', hostSide, 'master', 'cni0', 'up')
  await inPod('addr', 'add', `${podIp}/${v4.prefix}`, 'dev', 'eth0')
  if (v6) await inPod('addr', 'add', `${podIp6}/${v6.prefix}`, 'dev', 'eth0', 'nodad')
  await inPod('link', 'set', 'eth0', 'up')
  await inPod('route', 'add', 'default', 'via', gw)
  if (v6) await inPod('-6', 'route', 'add', 'default', 'via', gw6!)

  return {
    name: opts.name,
    host,
    netns,
    ip: podIp,
    gateway: gw,
    ...(v6 ? { ipv6: podIp6!, gatewayV6: gw6! } : {}),
    exec: (...argv) => nsExec(netns, argv),
    run: (argv, o) => nsExec(netns, argv, o),
  }
}

/** Parses KEY=VALUE lines (subnet.env); blank lines and # comments are skipped. */
export function parseSubnetEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    env[line.slice(0, eq)] = line.slice(eq + 1).replace(/^"(.*)"$/, '$1')
  }
  return env
}

/**
 * Reads a host's subnet.env. The file system is shared with the host namespaces, so it is read
 * directly; `host` names the owner in errors. Resolves undefined while the file does not exist.
 */
export async function readSubnetEnv(host: TestHost, path: string): Promise<Record<string, string> | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Error(`cannot read subnet file of ${host.name} at ${path}: ${(err as Error).message}`, { cause: err })
  }
  return parseSubnetEnv(text)
}

/** Polls {@link readSubnetEnv} until FLANNEL_SUBNET or FLANNEL_IPV6_SUBNET is present, or throws after `timeoutMs`. */
export async function waitForSubnetEnv(
  host: TestHost, path: string, opts: { timeoutMs?: number; signal?: AbortSignal; isAlive?: () => boolean } = {},
): Promise<Record<string, string>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000)
  for (;;) {
    opts.signal?.throwIfAborted()
    const env = await readSubnetEnv(host, path)
    if (env && (env.FLANNEL_SUBNET || env.FLANNEL_IPV6_SUBNET)) return env
    if (opts.isAlive && !opts.isAlive()) throw new Error(`${host.name}: process exited before writing ${path}`)
    if (Date.now() > deadline) throw new Error(`${host.name}: no subnet file at ${path} within ${opts.timeoutMs ?? 20_000} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
