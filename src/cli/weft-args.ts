/**
 * `weft` arguments: a command, its positional arguments, its own switches, and the same etcd
 * flags (and FLANNELD_* variables) as weftd, validated by weftd's flag table.
 */
import { ConfigError } from '../errors.ts'
import { parseDaemonArgs, type DaemonOptions } from '../daemon/options.ts'

/** weftd flags that `weft` understands: how to reach the store. */
const STORE_FLAGS = ['etcd-endpoints', 'etcd-prefix', 'etcd-keyfile', 'etcd-certfile', 'etcd-cafile', 'etcd-username', 'etcd-password', 'v', 'log-format']

export interface WeftArgs {
  readonly command: string[]
  readonly switches: ReadonlySet<string>
  readonly store: DaemonOptions
}

export function parseWeftArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, allowedSwitches: readonly string[]): WeftArgs | { help: true } {
  const command: string[] = []
  const switches = new Set<string>()
  const flags: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (!arg.startsWith('-') || arg === '-') { command.push(arg); continue }
    const body = arg.replace(/^--?/, '')
    const name = body.split('=')[0] as string
    if (name === 'h' || name === 'help') return { help: true }
    if (allowedSwitches.includes(name)) { switches.add(name); continue }
    if (!STORE_FLAGS.includes(name)) {
      throw new ConfigError(arg.split('=')[0] as string, `unknown flag; weft takes ${[...allowedSwitches.map((s) => `--${s}`), ...STORE_FLAGS.map((f) => `--${f}`)].join(', ')}`, { code: 'USAGE' })
    }
    flags.push(arg)
    if (!body.includes('=') && i + 1 < argv.length) flags.push(argv[++i] as string)
  }
  // Only the store variables may come from the environment: FLANNELD_IP_MASQ etc. mean nothing here.
  const storeEnv: Record<string, string | undefined> = {}
  for (const f of STORE_FLAGS) {
    const v = `FLANNELD_${f.toUpperCase().replace(/-/g, '_')}`
    storeEnv[v] = env[v]
  }
  const parsed = parseDaemonArgs(flags, storeEnv, { stderrIsTTY: process.stderr.isTTY === true, program: 'weft' })
  if ('help' in parsed) return { help: true }
  if ('version' in parsed) throw new ConfigError('--version', 'use `weft version`', { code: 'USAGE' })
  return { command, switches, store: parsed }
}
