/**
 * weftd command-line flags: flanneld's flags (reference §2) declared once in `FLAGS`, parsed
 * with Go `flag` syntax, then filled from `FLANNELD_*` environment variables for every flag not
 * given on the command line (coreos flagutil.SetFlagsFromEnv). Pure: argv and env come in,
 * typed options or a help/version request come out; every error is a USAGE ConfigError.
 */
import { ConfigError } from '../errors.ts'
import { parseIp, type IpAddr } from '../ip/ip.ts'

/** Typed result of parsing; field names are the camelCase flag names. */
export interface DaemonOptions {
  readonly etcdEndpoints: readonly string[]
  readonly etcdPrefix: string
  readonly etcdKeyfile: string
  readonly etcdCertfile: string
  readonly etcdCafile: string
  readonly etcdUsername: string
  readonly etcdPassword: string
  readonly iface: readonly string[]
  readonly ifaceRegex: readonly string[]
  readonly ifaceCanReach?: IpAddr
  readonly subnetFile: string
  readonly publicIp?: IpAddr
  readonly publicIpv6?: IpAddr
  readonly subnetLeaseRenewMargin: number
  readonly ipMasq: boolean
  readonly ipMasqFullyRandomDisable: boolean
  readonly kubeSubnetMgr: boolean
  readonly kubeApiUrl: string
  readonly kubeAnnotationPrefix: string
  readonly kubeconfigFile: string
  readonly healthzIp: string
  readonly healthzPort: number
  /** --metrics-addr: where /metrics is served; undefined (the default) turns metrics off. */
  readonly metricsAddr?: ListenAddr
  readonly iptablesResync: number
  readonly iptablesForwardRules: boolean
  readonly ipBlackholeRoute: boolean
  readonly netConfigPath: string
  readonly setNodeNetworkUnavailable: boolean
  /** klog verbosity (-v), 0..10. */
  readonly verbosity: number
  /** 'debug' when verbosity >= 4, else 'info'. */
  readonly logLevel: 'info' | 'debug'
  readonly logFormat: 'json' | 'human'
  /** Where each flag's value came from, for the start-up "flags" log line. */
  readonly sources: Readonly<Record<string, 'cli' | 'env' | 'default'>>
}

/** A host and port to listen on. */
export interface ListenAddr {
  readonly host: string
  readonly port: number
}

/** Options, or a request to print usage (-h) or the version (--version). */
export type ParseResult = DaemonOptions | { readonly help: string } | { readonly version: true }

/** Facts about the process that the pure parser may not look up itself. */
export interface ParseContext {
  /** Decides the default --log-format: human on a terminal, JSON otherwise. */
  readonly stderrIsTTY?: boolean
  /** Program name for the usage line. */
  readonly program?: string
}

/** How a flag's text is read: `list` flags repeat and accumulate. */
export type FlagType = 'string' | 'bool' | 'int' | 'list'
/** A flag's raw value before its `check`. */
export type FlagValue = string | boolean | number | readonly string[]

/** One flag, declared once: parsing, env lookup, validation and `-h` all read this. */
export interface FlagSpec {
  /** Flag name without dashes, exactly flanneld's. */
  readonly name: string
  /** DaemonOptions field; undefined for flags accepted only for compatibility (-vmodule). */
  readonly key?: keyof DaemonOptions
  readonly type: FlagType
  readonly default: FlagValue
  readonly description: string
  /** false: no FLANNELD_* variable (--version, as flagutil has no effect on it). */
  readonly env?: false
  /** Not listed in -h (klog compatibility flags). */
  readonly hidden?: boolean
  /** Validates and converts the raw value; throws RuleError with the rule broken. */
  readonly check?: (value: never) => unknown
}

/** A broken rule, turned into a USAGE error naming the flag or the variable. */
class RuleError extends Error {}

const inRange = (min: number, max: number) => (n: number): number => {
  if (n < min || n > max) throw new RuleError(`must be in ${min}..${max}, got ${n}`)
  return n
}

const optionalIp = (family: 4 | 6) => (text: string): IpAddr | undefined => {
  if (text === '') return undefined
  const ip = parseIp(text)
  if (!ip || ip.family !== family) throw new RuleError(`must be an IPv${family} address, got ${JSON.stringify(text)}`)
  return ip
}

function endpoints(text: string): string[] {
  const list = text.split(',')
  for (const item of list) {
    let url: URL | undefined
    try { url = new URL(item) } catch { url = undefined }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
      throw new RuleError(`must be a comma-separated list of http(s) URLs, got ${JSON.stringify(item)}`)
    }
  }
  return list
}

function regexes(list: readonly string[]): readonly string[] {
  for (const re of list) {
    try { new RegExp(re) } catch (err) { throw new RuleError(`invalid regular expression ${JSON.stringify(re)}: ${(err as Error).message}`) }
  }
  return list
}

function anyIp(text: string): string {
  if (!parseIp(text)) throw new RuleError(`must be an IP address, got ${JSON.stringify(text)}`)
  return text
}

/** HOST:PORT, [IPv6]:PORT, or a bare PORT, which means loopback (metrics are not for the world by default). */
function listenAddr(text: string): ListenAddr | undefined {
  if (text === '') return undefined
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:]+):)?(\d+)$/.exec(text)
  const port = m ? Number(m[2]) : NaN
  if (!m || port < 1 || port > 65535) throw new RuleError(`must be HOST:PORT, [IPV6]:PORT or PORT (1..65535), got ${JSON.stringify(text)}`)
  const host = m[1] === undefined ? '127.0.0.1' : m[1].replace(/^\[(.*)\]$/, '$1')
  if (m[1]?.startsWith('[') && parseIp(host)?.family !== 6) throw new RuleError(`must be HOST:PORT, [IPV6]:PORT or PORT (1..65535), got ${JSON.stringify(text)}`)
  return { host, port }
}

function logFormat(text: string): 'json' | 'human' | undefined {
  if (text === '') return undefined
  if (text !== 'json' && text !== 'human') throw new RuleError(`must be json or human, got ${JSON.stringify(text)}`)
  return text
}

/** Every flanneld flag (reference §2) plus weft's --log-format. */
export const FLAGS: readonly FlagSpec[] = [
  { name: 'etcd-endpoints', key: 'etcdEndpoints', type: 'string', default: 'http://127.0.0.1:4001,http://127.0.0.1:2379', description: 'comma-separated list of etcd endpoints', check: endpoints },
  { name: 'etcd-prefix', key: 'etcdPrefix', type: 'string', default: '/coreos.com/network', description: 'etcd prefix' },
  { name: 'etcd-keyfile', key: 'etcdKeyfile', type: 'string', default: '', description: 'SSL key file used to secure etcd communication' },
  { name: 'etcd-certfile', key: 'etcdCertfile', type: 'string', default: '', description: 'SSL certification file used to secure etcd communication' },
  { name: 'etcd-cafile', key: 'etcdCafile', type: 'string', default: '', description: 'SSL Certificate Authority file used to secure etcd communication' },
  { name: 'etcd-username', key: 'etcdUsername', type: 'string', default: '', description: 'username for BasicAuth to etcd' },
  { name: 'etcd-password', key: 'etcdPassword', type: 'string', default: '', description: 'password for BasicAuth to etcd' },
  { name: 'iface', key: 'iface', type: 'list', default: [], description: 'interface to use (IP or name) for inter-host communication; tried in order' },
  { name: 'iface-regex', key: 'ifaceRegex', type: 'list', default: [], description: 'regex matching the IP or name of the interface to use; tried after every --iface', check: regexes },
  { name: 'iface-can-reach', key: 'ifaceCanReach', type: 'string', default: '', description: 'use the interface and source address the kernel would use to reach this IP', check: (t: string) => (t === '' ? undefined : anyIpAddr(t)) },
  { name: 'subnet-file', key: 'subnetFile', type: 'string', default: '/run/flannel/subnet.env', description: 'filename where env variables (subnet, MTU, ...) will be written to' },
  { name: 'public-ip', key: 'publicIp', type: 'string', default: '', description: 'IPv4 address accessible by other nodes for inter-host communication', check: optionalIp(4) },
  { name: 'public-ipv6', key: 'publicIpv6', type: 'string', default: '', description: 'IPv6 address accessible by other nodes for inter-host communication', check: optionalIp(6) },
  { name: 'subnet-lease-renew-margin', key: 'subnetLeaseRenewMargin', type: 'int', default: 60, description: 'subnet lease renewal margin, in minutes (1..1439)', check: inRange(1, 1439) },
  { name: 'ip-masq', key: 'ipMasq', type: 'bool', default: false, description: 'setup IP masquerade rule for traffic destined outside of overlay network' },
  { name: 'ip-masq-fully-random-disable', key: 'ipMasqFullyRandomDisable', type: 'bool', default: false, description: 'never use --random-fully in the masquerade rules' },
  { name: 'kube-subnet-mgr', key: 'kubeSubnetMgr', type: 'bool', default: false, description: 'contact the Kubernetes API for subnet assignment instead of etcd' },
  { name: 'kube-api-url', key: 'kubeApiUrl', type: 'string', default: '', description: 'Kubernetes API server URL; empty for in-cluster config' },
  { name: 'kube-annotation-prefix', key: 'kubeAnnotationPrefix', type: 'string', default: 'flannel.alpha.coreos.com', description: 'Kubernetes annotation prefix' },
  { name: 'kubeconfig-file', key: 'kubeconfigFile', type: 'string', default: '', description: 'kubeconfig file location; empty for in-cluster config' },
  { name: 'version', type: 'bool', default: false, description: 'print version and exit', env: false },
  { name: 'healthz-ip', key: 'healthzIp', type: 'string', default: '0.0.0.0', description: 'the IP address for the healthz server to listen on', check: anyIp },
  { name: 'healthz-port', key: 'healthzPort', type: 'int', default: 0, description: 'the port for the healthz server to listen on (0 to disable)', check: inRange(0, 65535) },
  { name: 'metrics-addr', key: 'metricsAddr', type: 'string', default: '', description: 'serve Prometheus metrics at /metrics on HOST:PORT (a bare PORT listens on 127.0.0.1), and on the healthz port; off when empty', check: listenAddr },
  { name: 'iptables-resync', key: 'iptablesResync', type: 'int', default: 5, description: 'resync period for iptables rules, in seconds (>= 1)', check: inRange(1, Number.MAX_SAFE_INTEGER) },
  { name: 'iptables-forward-rules', key: 'iptablesForwardRules', type: 'bool', default: true, description: 'add default accept rules to the FORWARD chain' },
  { name: 'ip-blackhole-route', key: 'ipBlackholeRoute', type: 'bool', default: false, description: 'add a blackhole route for this host\'s subnet' },
  { name: 'net-config-path', key: 'netConfigPath', type: 'string', default: '/etc/kube-flannel/net-conf.json', description: 'path to the network configuration file (kube mode)' },
  { name: 'set-node-network-unavailable', key: 'setNodeNetworkUnavailable', type: 'bool', default: true, description: 'set the node condition NetworkUnavailable to false after start (kube mode)' },
  { name: 'log-format', key: 'logFormat', type: 'string', default: '', description: 'log format, json or human (default: human when stderr is a terminal)', check: logFormat },
  { name: 'v', key: 'verbosity', type: 'int', default: 0, description: 'log verbosity 0..10; 4 or more logs at debug level', check: inRange(0, 10) },
  { name: 'vmodule', type: 'string', default: '', description: 'accepted for klog compatibility; ignored', hidden: true },
  { name: 'log_backtrace_at', type: 'string', default: '', description: 'accepted for klog compatibility; ignored', hidden: true },
]

function anyIpAddr(text: string): IpAddr {
  const ip = parseIp(text)
  if (!ip) throw new RuleError(`must be an IP address, got ${JSON.stringify(text)}`)
  return ip
}

const BY_NAME = new Map(FLAGS.map((f) => [f.name, f]))

/** Environment variable that feeds a flag: FLANNELD_ + upper-case name, '-' → '_'. */
export function envName(flag: string): string {
  return `FLANNELD_${flag.toUpperCase().replace(/-/g, '_')}`
}

/** Parses argv (without node and script) and env; throws ConfigError with code 'USAGE'. */
export function parseDaemonArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, ctx: ParseContext = {}): ParseResult {
  const program = ctx.program ?? 'weftd'
  const values = new Map<string, FlagValue>()
  const sources: Record<string, 'cli' | 'env' | 'default'> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') {
      if (i + 1 < argv.length) throw usage('', `unexpected argument ${JSON.stringify(argv[i + 1])}: ${program} takes no positional arguments`)
      break
    }
    if (!arg.startsWith('-') || arg === '-') throw usage('', `unexpected argument ${JSON.stringify(arg)}: ${program} takes no positional arguments`)
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1)
    if (body === '' || body.startsWith('-') || body.startsWith('=')) throw usage('', `bad flag syntax: ${arg}`)
    const eq = body.indexOf('=')
    const name = eq < 0 ? body : body.slice(0, eq)
    if (name === 'h' || name === 'help') return { help: usageText(program) }
    const spec = BY_NAME.get(name)
    if (!spec) throw usage(`-${name.length > 1 ? '-' : ''}${name}`, `unknown flag${suggest(name)}`)
    let text: string | undefined = eq < 0 ? undefined : body.slice(eq + 1)
    if (text === undefined && spec.type !== 'bool') {
      // Go's flag package takes the next argument as the value, even one starting with '-'.
      if (i + 1 >= argv.length) throw usage(`--${name}`, 'flag needs an argument')
      text = argv[++i] as string
    }
    const value = convert(spec, text, `--${name}`)
    values.set(name, spec.type === 'list' ? [...((values.get(name) as string[] | undefined) ?? []), ...(value as string[])] : value)
    sources[name] = 'cli'
  }
  for (const spec of FLAGS) {
    if (values.has(spec.name) || spec.env === false) continue
    const variable = envName(spec.name)
    const text = env[variable]
    // flagutil skips unset and empty variables.
    if (text === undefined || text === '') continue
    values.set(spec.name, convert(spec, text, variable))
    sources[spec.name] = 'env'
  }
  if (values.get('version') === true) return { version: true }
  return finish(values, sources, ctx)
}

function convert(spec: FlagSpec, text: string | undefined, where: string): FlagValue {
  try {
    switch (spec.type) {
      case 'bool': return text === undefined ? true : parseGoBool(text)
      case 'int': return parseGoInt(text as string)
      case 'list': return [text as string]
      case 'string': return text as string
    }
  } catch (err) {
    if (err instanceof RuleError) throw usage(where, err.message)
    throw err
  }
}

function finish(values: Map<string, FlagValue>, sources: Record<string, 'cli' | 'env' | 'default'>, ctx: ParseContext): DaemonOptions {
  const out: Record<string, unknown> = {}
  for (const spec of FLAGS) {
    if (!values.has(spec.name)) sources[spec.name] ??= 'default'
    const raw = values.get(spec.name) ?? spec.default
    if (spec.key === undefined) continue
    try {
      const value = spec.check ? spec.check(raw as never) : raw
      if (value !== undefined) out[spec.key] = value
    } catch (err) {
      if (!(err instanceof RuleError)) throw err
      throw usage(sources[spec.name] === 'env' ? envName(spec.name) : `--${spec.name}`, err.message)
    }
  }
  const verbosity = out.verbosity as number
  out.logLevel = verbosity >= 4 ? 'debug' : 'info'
  out.logFormat ??= ctx.stderrIsTTY ? 'human' : 'json'
  out.sources = Object.freeze(sources)
  return Object.freeze(out) as unknown as DaemonOptions
}

/** strconv.ParseBool's accepted spellings, so FLANNELD_IP_MASQ=1 works as in flannel. */
function parseGoBool(text: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text)) return false
  throw new RuleError(`must be a boolean (true or false), got ${JSON.stringify(text)}`)
}

function parseGoInt(text: string): number {
  if (!/^[+-]?\d+$/.test(text)) throw new RuleError(`must be an integer, got ${JSON.stringify(text)}`)
  const n = Number(text)
  if (!Number.isSafeInteger(n)) throw new RuleError(`is out of range, got ${text}`)
  return n
}

function usage(field: string, rule: string): ConfigError {
  return new ConfigError(field, rule, { code: 'USAGE' })
}

/** "; did you mean --iface?" when a known flag is within edit distance 2 (or a prefix). */
function suggest(name: string): string {
  let best: string | undefined
  let bestDistance = 3
  for (const spec of FLAGS) {
    if (spec.hidden) continue
    const d = spec.name.startsWith(name) && name.length >= 3 ? 1 : editDistance(name, spec.name)
    if (d < bestDistance) { best = spec.name; bestDistance = d }
  }
  return best === undefined ? '' : `; did you mean --${best}?`
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length] as number
}

/** `-h` output: one entry per flag with its type, default and environment variable. */
export function usageText(program = 'weftd'): string {
  const lines = [`Usage: ${program} [OPTION]...`, '']
  for (const spec of FLAGS) {
    if (spec.hidden) continue
    const arg = spec.type === 'bool' ? '' : spec.type === 'int' ? '=<int>' : '=<string>'
    const def = formatDefault(spec)
    lines.push(`  --${spec.name}${arg}`)
    lines.push(`        ${spec.description}${spec.type === 'list' ? ' (repeatable)' : ''}${def === '' ? '' : ` (default ${def})`}${spec.env === false ? '' : ` [$${envName(spec.name)}]`}`)
  }
  return lines.join('\n') + '\n'
}

function formatDefault(spec: FlagSpec): string {
  const d = spec.default
  if (Array.isArray(d)) return d.length === 0 ? '' : d.join(',')
  if (d === '' || d === false) return ''
  return typeof d === 'string' ? JSON.stringify(d) : String(d)
}
