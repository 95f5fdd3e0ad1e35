/**
 * subnet.env (flannel pkg/subnet/subnet.go WriteSubnetFile): the file the CNI `flannel` plugin
 * and mk-docker-opts.sh read. Rendering and parsing are pure; writeSubnetFile is the one
 * effect (atomic replace: temp file in the same directory, fsync, rename).
 */
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from '../util/random-bytes.ts'
import { WeftError } from '../errors.ts'
import { formatCidr, formatIp, parseIpWithPrefix, type Family, type IpNet } from '../ip/ip.ts'

/** What flanneld writes: networks from the config, subnets from our lease (network address form). */
export interface SubnetEnvValues {
  readonly ipv4Network?: IpNet
  readonly ipv4Subnet?: IpNet
  readonly ipv6Network?: IpNet
  readonly ipv6Subnet?: IpNet
  /** FLANNEL_MTU, the backend's MTU. */
  readonly mtu: number
  /** FLANNEL_IPMASQ, the value of --ip-masq. */
  readonly ipMasq: boolean
}

/** What a previous run left behind; subnets are returned as networks (host bits masked). */
export interface PreviousSubnetEnv {
  readonly ipv4Network?: IpNet
  readonly ipv4Subnet?: IpNet
  readonly ipv6Network?: IpNet
  readonly ipv6Subnet?: IpNet
  readonly mtu?: number
  readonly ipMasq?: boolean
}

/**
 * Renders flannel's exact variables and order. FLANNEL_SUBNET is the first usable address of
 * the lease with its prefix (10.5.72.0/24 → 10.5.72.1/24): docker's --bip and the CNI bridge use it.
 */
export function renderSubnetEnv(v: SubnetEnvValues): string {
  const lines: string[] = []
  for (const [family, network, subnet, prefix] of [
    [4, v.ipv4Network, v.ipv4Subnet, 'FLANNEL_'],
    [6, v.ipv6Network, v.ipv6Subnet, 'FLANNEL_IPV6_'],
  ] as const) {
    if (!network && !subnet) continue
    if (!network || !subnet || network.family !== family || subnet.family !== family) {
      throw new WeftError('INVALID_INPUT', `subnet.env needs both the IPv${family} network and subnet, of family ${family}`)
    }
    lines.push(`${prefix}NETWORK=${formatCidr(network)}`)
    lines.push(`${prefix}SUBNET=${formatIp({ family, value: subnet.addr + 1n })}/${subnet.prefix}`)
  }
  if (!Number.isInteger(v.mtu) || v.mtu <= 0) throw new WeftError('INVALID_INPUT', `subnet.env FLANNEL_MTU must be a positive integer, got ${v.mtu}`)
  lines.push(`FLANNEL_MTU=${v.mtu}`, `FLANNEL_IPMASQ=${v.ipMasq}`)
  return lines.join('\n') + '\n'
}

/**
 * Reads a previous subnet.env (godotenv rules). Values that are not a single CIDR of the right
 * family, including comma-separated lists (the MultiClusterCIDR form), are ignored.
 */
export function parseSubnetEnv(text: string): PreviousSubnetEnv {
  const env = parseDotEnv(text)
  const net = (key: string, family: Family): IpNet | undefined => {
    const value = env[key]
    if (value === undefined || value.includes(',')) return undefined
    const parsed = parseIpWithPrefix(value.trim())
    return parsed && parsed.net.family === family ? parsed.net : undefined
  }
  const mtuText = env.FLANNEL_MTU
  const mtu = mtuText !== undefined && /^\d+$/.test(mtuText) ? Number(mtuText) : undefined
  const masq = env.FLANNEL_IPMASQ
  const out: Record<string, unknown> = {
    ipv4Network: net('FLANNEL_NETWORK', 4),
    ipv4Subnet: net('FLANNEL_SUBNET', 4),
    ipv6Network: net('FLANNEL_IPV6_NETWORK', 6),
    ipv6Subnet: net('FLANNEL_IPV6_SUBNET', 6),
    mtu,
    ipMasq: masq === 'true' ? true : masq === 'false' ? false : undefined,
  }
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k]
  return out as PreviousSubnetEnv
}

/**
 * A dotenv reader in the spirit of godotenv: `KEY=value`, `KEY: value`, optional `export `,
 * `#` comments (inline only after whitespace in unquoted values), single quotes literal,
 * double quotes with backslash escapes (\n is a newline). A later key wins.
 */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*[=:]\s*(.*)$/.exec(line)
    if (!m) continue
    out[m[1] as string] = unquote(m[2] as string)
  }
  return out
}

function unquote(value: string): string {
  if (value.startsWith("'")) {
    const end = value.indexOf("'", 1)
    // An unterminated quote is taken literally, as the rest of the line.
    return end < 0 ? value : value.slice(1, end)
  }
  if (value.startsWith('"')) {
    const m = /^"((?:[^"\\]|\\.)*)"/.exec(value)
    if (!m) return value
    return (m[1] as string).replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c))
  }
  const hash = value.search(/\s#/)
  return (hash >= 0 ? value.slice(0, hash) : value).trim()
}

/**
 * Writes `text` to `path` atomically: creates the parent (0755), writes a temp file in the same
 * directory, fsyncs, renames over `path`. The file ends up 0644 whatever the umask, as flannel's.
 * Synchronous calls on purpose: a few hundred bytes on weftd's start-up path, where thread-pool
 * round trips cost more than the writes, and node:fs/promises would load (and keep resident)
 * modules nothing else in the daemon needs.
 */
export async function writeSubnetFile(path: string, text: string): Promise<void> {
  const dir = dirname(path)
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const fd = openSync(tmp, 'wx', 0o644)
  let closed = false
  let renamed = false
  try {
    writeFileSync(fd, text)
    fchmodSync(fd, 0o644) // open's mode is filtered by the umask; chmod is not
    fsyncSync(fd)
    closeSync(fd)
    closed = true
    renameSync(tmp, path)
    renamed = true
  } finally {
    if (!closed) closeSync(fd)
    if (!renamed) rmSync(tmp, { force: true })
  }
  syncDir(dir)
}

/** Makes the rename durable; some filesystems refuse fsync on a directory, which is harmless. */
function syncDir(dir: string): void {
  try {
    const d = openSync(dir, 'r')
    try { fsyncSync(d) } finally { closeSync(d) }
  } catch { /* best effort */ }
}

/** Reads the file; undefined when it does not exist. Synchronous: start-up reads it before anything runs concurrently. */
export function readSubnetFileSync(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
