/** Dispatches `weft` commands; returns the exit code. */
import { parseWeftArgs } from './weft-args.ts'
import { openEtcdRegistry } from './store.ts'
import { leaseRows, formatLeaseTable } from './commands/leases.ts'
import { getConfig, setConfig } from './commands/config.ts'
import { reserve, unreserve } from './commands/reserve.ts'
import { StreamLogger } from '../log/stream-logger.ts'
import { errorMessage, isWeftError } from '../errors.ts'
import { VERSION } from './version.ts'
import type { Registry } from '../subnet/etcd/registry.ts'

const USAGE = `Usage: weft COMMAND [ARGS] [--etcd-endpoints=URLS] [--etcd-prefix=PREFIX] [etcd TLS/auth flags]

Commands:
  config get                 print the network config JSON
  config set FILE [--force]  validate FILE and write it as the network config
  dashboard --hosts H:P,...  serve the live cluster page (--listen ADDR, loopback by default)
  doctor [--json] [FLAGS]    find what breaks the overlay on this host (takes weftd's flags)
  leases [--json]            list leases: subnet, public IP, backend, VTEP MAC, expires in
  reserve SUBNET PUBLICIP    reserve SUBNET for the host with PUBLICIP (a key without TTL)
  unreserve SUBNET           remove a reservation
  version                    print the version

The etcd flags and FLANNELD_ETCD_* variables are weftd's. With CNI_COMMAND set, weft runs as
the 'weft' CNI plugin.
`

export async function runWeft(argv: readonly string[], env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<number> {
  if (env.CNI_COMMAND !== undefined && env.CNI_COMMAND !== '') return runCni(env)
  // doctor takes every weftd flag, not only the store's: its own parser.
  if (argv[0] === 'doctor') return (await import('./commands/doctor.ts')).runDoctor(argv.slice(1), env, signal)
  if (argv[0] === 'dashboard') return (await import('./commands/dashboard.ts')).runDashboard(argv.slice(1), signal)
  let registry: Registry | undefined
  try {
    const args = parseWeftArgs(argv, env, ['json', 'force'])
    if ('help' in args) {
      process.stdout.write(USAGE)
      return 0
    }
    const [command, ...rest] = args.command
    if (command === undefined) {
      process.stderr.write(USAGE)
      return 2
    }
    if (command === 'version') {
      process.stdout.write(`${VERSION}\n`)
      return 0
    }
    const logger = new StreamLogger({ level: args.store.logLevel, format: args.store.logFormat, write: (l) => process.stderr.write(l) })
    registry = openEtcdRegistry(args.store, logger)
    const prefix = args.store.etcdPrefix
    const sub = `${command} ${rest[0] ?? ''}`.trim()
    if (sub === 'config get' && rest.length === 1) {
      process.stdout.write((await getConfig(registry, prefix, signal)).trimEnd() + '\n')
    } else if (sub.startsWith('config set') && rest.length === 2) {
      const warnings = await setConfig(registry, prefix, rest[1] as string, args.switches.has('force'), signal)
      for (const w of warnings) process.stderr.write(`weft: warning: ${w}\n`)
      process.stdout.write(`network config written to ${prefix}/config\n`)
    } else if (command === 'leases' && rest.length === 0) {
      const rows = await leaseRows(registry, prefix, signal)
      process.stdout.write(args.switches.has('json') ? JSON.stringify(rows, null, 2) + '\n' : formatLeaseTable(rows))
    } else if (command === 'reserve' && rest.length === 2) {
      process.stdout.write(`reserved ${await reserve(registry, prefix, rest[0] as string, rest[1] as string, signal)}\n`)
    } else if (command === 'unreserve' && rest.length === 1) {
      process.stdout.write(`removed reservation ${await unreserve(registry, prefix, rest[0] as string, signal)}\n`)
    } else {
      process.stderr.write(`weft: unknown command or wrong arguments: ${args.command.join(' ')}\n\n${USAGE}`)
      return 2
    }
    return 0
  } catch (err) {
    process.stderr.write(`weft: ${errorMessage(err)}\n`)
    return isWeftError(err) && ['USAGE', 'CONFIG_INVALID', 'BACKEND_UNKNOWN', 'BACKEND_CHANGED', 'INVALID_INPUT'].includes(err.code) ? 2 : 1
  } finally {
    await registry?.close().catch(() => {})
  }
}

async function runCni(env: NodeJS.ProcessEnv): Promise<number> {
  const { runCniPlugin } = await import('../cni/cni-plugin.ts')
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const result = await runCniPlugin(env, Buffer.concat(chunks).toString('utf8'))
  process.stdout.write(result.stdout)
  return result.exitCode
}
