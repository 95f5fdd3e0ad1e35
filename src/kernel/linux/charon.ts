/**
 * strongSwan's charon, spawned and owned by weftd for the ipsec backend (flannel runs it the
 * same way: searched in the usual paths, parent-death signal, SIGTERM on shutdown), driven over
 * VICI. In the host's network namespace it uses its defaults (/var/run/charon.vici, as flannel);
 * in any other namespace it runs in a mount namespace of its own with a per-namespace directory
 * mounted on /run, so two namespaces on one machine each get their pid file and VICI socket.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { formatCidr, formatIp } from '../../ip/ip.ts'
import type { Logger } from '../../log/logger.ts'
import type { IkeConnection, IkeDaemon } from '../ike.ts'
import { viciRequest, type ViciMessage } from './vici.ts'

/** flannel's search order. */
export const CHARON_PATHS = ['/usr/lib/strongswan/charon', '/usr/lib/ipsec/charon', '/usr/libexec/strongswan/charon', '/usr/libexec/ipsec/charon']

const inode = (path: string): number => statSync(path).ino

export async function startCharon(log: Logger): Promise<IkeDaemon> {
  const exe = CHARON_PATHS.find((p) => existsSync(p))
  if (!exe) throw new Error(`no charon executable found at ${CHARON_PATHS.join(', ')} (Debian package strongswan-charon)`)
  let own: number
  let init: number | undefined
  own = inode('/proc/thread-self/ns/net')
  try { init = inode('/proc/1/ns/net') } catch { init = undefined }
  const dir = own === init ? undefined : join('/run/flannel/ipsec', `netns-${own}`)
  let argv: string[]
  if (dir) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /run && exec "$@"', dir, exe]
  } else argv = [exe]
  if (existsSync('/usr/bin/setpriv')) argv = ['/usr/bin/setpriv', '--pdeathsig', 'TERM', ...argv]
  // charon's own log to stderr (level 1), passed on to our log at debug level.
  const confDir = dir ?? '/run/flannel/ipsec'
  mkdirSync(confDir, { recursive: true, mode: 0o700 })
  const conf = join(confDir, 'strongswan.conf')
  writeFileSync(conf, 'include /etc/strongswan.conf\ncharon {\n  filelog {\n    stderr {\n      default = 1\n      ike_name = yes\n    }\n  }\n}\n')
  const socket = join(dir ?? '/var/run', 'charon.vici')
  rmSync(socket, { force: true })
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], // Inside its mount namespace our directory is /run.
    env: { ...process.env, STRONGSWAN_CONF: dir ? '/run/strongswan.conf' : conf } })
  let output = ''
  const keep = (d: Buffer): void => {
    const text = d.toString('utf8')
    output = (output + text).slice(-4000)
    for (const line of text.split('\n')) if (line.trim() !== '') log.debug('charon', { line: line.trim() })
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let exited = false
  const exit = new Promise<void>((resolve) => child.once('close', () => { exited = true; resolve() }))
  child.on('error', () => { exited = true })
  const deadline = Date.now() + 15_000
  let version: ViciMessage | undefined
  while (!version) {
    if (exited) throw new Error(`charon exited at start: ${output.trim().split('\n').slice(-5).join(' | ') || 'no output'}`)
    version = await viciRequest(socket, 'version', {}, 1000).catch(() => undefined)
    if (!version) {
      if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`charon did not open ${socket} within 15 s`) }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  log.info('charon started', { pid: child.pid, vici: socket, version: String(version['version'] ?? '') })
  return new Charon(child, exit, () => exited, socket, `charon (strongSwan ${String(version['version'] ?? '?')})`, dir)
}

class Charon implements IkeDaemon {
  constructor(
    private readonly child: ChildProcess,
    private readonly exit: Promise<void>,
    private readonly exited: () => boolean,
    private readonly socket: string,
    readonly description: string,
    private readonly dir: string | undefined,
  ) {}

  async loadConnection(conn: IkeConnection): Promise<void> {
    const remote = formatIp(conn.remoteAddr)
    // Our own address too (flannel loads a key for it at start): the responder looks the key up
    // for (own IP, %any) before it knows the initiator's identity.
    await this.command('load-shared', { id: `flannel-${remote}`, type: 'IKE', data: conn.psk, owners: [formatIp(conn.localAddr), remote] })
    const child = `${formatCidr(conn.localTs)}-${formatCidr(conn.remoteTs)}`
    await this.command('load-conn', {
      [conn.name]: {
        local_addrs: [formatIp(conn.localAddr)], remote_addrs: [remote],
        // flannel's IKE proposal, version and retries.
        proposals: ['aes256-sha256-modp4096'], version: '2', keyingtries: '0', encap: conn.udpEncap ? 'yes' : 'no',
        local: { auth: 'psk' }, remote: { auth: 'psk' },
        children: {
          [child]: {
            local_ts: [formatCidr(conn.localTs)], remote_ts: [formatCidr(conn.remoteTs)], esp_proposals: [conn.espProposal],
            start_action: 'start', close_action: 'trap', dpd_action: 'restart', mode: 'tunnel', rekey_time: '1h',
          },
        },
      },
    })
  }

  async unloadConnection(name: string): Promise<void> {
    const r = await viciRequest(this.socket, 'unload-conn', { name })
    // "connection 'x' not found" is what we want.
    if (r['success'] !== 'yes' && !/not found/.test(String(r['errmsg'] ?? ''))) throw new Error(`VICI unload-conn ${name}: ${String(r['errmsg'] ?? 'failed')}`)
  }

  async connections(): Promise<string[]> {
    const r = await viciRequest(this.socket, 'get-conns', {})
    const conns = r['conns']
    return Array.isArray(conns) ? [...conns as string[]].sort() : []
  }

  async stop(): Promise<void> {
    if (!this.exited()) {
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
      await this.exit
      clearTimeout(timer)
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }

  private async command(cmd: string, msg: ViciMessage): Promise<void> {
    const r = await viciRequest(this.socket, cmd, msg)
    if (r['success'] !== 'yes') throw new Error(`VICI ${cmd}: ${String(r['errmsg'] ?? 'failed')}`)
  }
}
