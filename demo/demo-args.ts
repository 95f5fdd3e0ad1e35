/** Command-line options of the demo (pure: argv in, options or a usage error out). */

/** Backends whose data plane the demo exercises with pods and pings (alloc only allocates). */
export const DATA_PLANE_BACKENDS: readonly string[] = ['vxlan', 'host-gw', 'udp']

/** The backend used without --backend (flannel's default too). */
export const DEFAULT_BACKEND = 'vxlan'

export interface DemoArgs {
  /** flannel Backend.Type written to the network config. */
  backend: string
  /** Run the sequence once, clean up and exit (non-zero when a step failed). */
  once: boolean
  /** Number of hosts (1..9). */
  hosts: number
  /** Also enable IPv6 (dual-stack network config, IPv6 underlay). */
  ipv6: boolean
  /** weftd log verbosity, passed as --v. */
  verbosity: number
  /** Seconds to wait for each host's subnet.env. */
  timeoutSec: number
  /** Stream every weftd log line to the console (prefixed by host). */
  showLogs: boolean
  /** Path of the weftd executable (a Node script); default bin/weftd. */
  weftd?: string
  /** Path of the weft CLI (a Node script); default bin/weft. */
  weft?: string
  help: boolean
}

export const USAGE = `usage: demo [--backend=alloc|vxlan|host-gw|udp] [--once] [--hosts=3] [--ipv6] [--v=N] [--logs] [--timeout=SEC]

Starts an N-host testbed (network namespaces on one machine), etcd, and weftd on every host;
prints the lease table and, for data-plane backends, pings between pods on every host.
Stays up until Ctrl-C unless --once is given.

  --backend=TYPE   flannel backend type (default ${DEFAULT_BACKEND})
  --once           run everything once, clean up, exit non-zero if any step failed
  --hosts=N        number of hosts, 1..9 (default 3)
  --ipv6           dual-stack: IPv6 underlay and IPv6Network in the config
  --v=N            weftd log verbosity (default 0)
  --logs           stream weftd logs to the console
  --timeout=SEC    wait at most SEC seconds for each host's subnet.env (default 30)
  --weftd=PATH     weftd executable (default bin/weftd)
  --weft=PATH      weft CLI (default bin/weft)`

/** A usage error: the message names the flag and the rule. */
export class UsageError extends Error {
  override name = 'UsageError'
}

function intFlag(name: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined || !/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be an integer in ${min}..${max}: ${value ?? '(missing)'}`)
  }
  return Number(value)
}

/** Parses `--flag=value`, `--flag value` and boolean `--flag` forms. */
export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const args: DemoArgs = {
    backend: DEFAULT_BACKEND, once: false, hosts: 3, ipv6: false, verbosity: 0, timeoutSec: 30, showLogs: false, help: false,
  }
  const booleans = new Set(['once', 'ipv6', 'logs', 'help'])
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '-h') { args.help = true; continue }
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg)
    if (!m) throw new UsageError(`unexpected argument: ${arg}`)
    const name = m[1]!
    let value = m[2]
    if (value === undefined && !booleans.has(name)) value = argv[++i]
    switch (name) {
      case 'backend':
        if (!value || !/^[a-z0-9-]+$/.test(value)) throw new UsageError(`--backend must be a backend type like vxlan: ${value ?? '(missing)'}`)
        args.backend = value
        break
      case 'once': args.once = value === undefined || value === 'true'; break
      case 'ipv6': args.ipv6 = value === undefined || value === 'true'; break
      case 'logs': args.showLogs = value === undefined || value === 'true'; break
      case 'help': args.help = true; break
      case 'hosts': args.hosts = intFlag(name, value, 1, 9); break
      case 'v': args.verbosity = intFlag(name, value, 0, 10); break
      case 'timeout': args.timeoutSec = intFlag(name, value, 1, 600); break
      case 'weftd':
      case 'weft':
        if (!value) throw new UsageError(`--${name} must be a path: (missing)`)
        args[name] = value
        break
      default:
        throw new UsageError(`unknown flag --${name}`)
    }
  }
  return args
}

/** The network config the demo writes to etcd. */
export function demoNetworkConfig(args: Pick<DemoArgs, 'backend' | 'ipv6'>): Record<string, unknown> {
  return {
    Network: '10.5.0.0/16',
    ...(args.ipv6 ? { EnableIPv6: true, IPv6Network: 'fd00:10:5::/48' } : {}),
    Backend: { Type: args.backend },
  }
}
