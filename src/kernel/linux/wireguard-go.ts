/**
 * A userspace WireGuard device: Debian's `wireguard-go`, spawned and owned by LinuxKernel, on
 * a TUN device of the requested name, configured over its UAPI unix socket (wireguard-uapi.ts).
 *
 * - The socket is made here and handed over as fd 3 (wireguard-go's WG_UAPI_FD):
 *   `/var/run/wireguard/<dev>.sock` in the host's namespace (where `wg show` finds it), and
 *   `/var/run/wireguard/netns-<inode>/<dev>.sock` in any other network namespace, since
 *   wireguard-go's fixed path collides when two namespaces on one machine both have a
 *   `flannel-wg` (there it runs with that directory mounted on /var/run/wireguard).
 * - The process lives as long as its TUN device: deleting the link ends it, stopping it removes
 *   the link.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, rmdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../../log/logger.ts'
import type { WireGuardChange, WireGuardState } from '../kernel.ts'
import { KernelError } from '../kernel-error.ts'
import { AF_UNIX, errnoName, libc, SOCK_CLOEXEC, SOCK_STREAM } from './libc.ts'
import { inNetns, type Netns } from './netns.ts'
import { decodeGet, encodeSet, errnoOf, uapiRequest } from './wireguard-uapi.ts'

export const WIREGUARD_GO = 'wireguard-go'
const SOCKET_ROOT = '/var/run/wireguard'
const SETPRIV = '/usr/bin/setpriv'

/** The UAPI socket directory for the current network namespace (see the header). */
export function socketDir(ns: Netns | undefined): string {
  const inode = (path: string): number => statSync(path).ino
  const own = inNetns(ns, () => inode('/proc/thread-self/ns/net'))
  let init: number | undefined
  try {
    init = inode('/proc/1/ns/net')
  } catch {
    init = undefined
  }
  return own === init ? SOCKET_ROOT : join(SOCKET_ROOT, `netns-${own}`)
}

export class UserspaceWireGuard {
  private exited = false
  /** Set when the process could not be started (ENOENT: wireguard-go is not installed). */
  spawnError: NodeJS.ErrnoException | undefined
  private readonly exit: Promise<void>

  private constructor(
    readonly name: string,
    readonly socket: string,
    private readonly child: ChildProcess,
    private readonly output: () => string,
  ) {
    this.exit = new Promise((resolve) => child.once('exit', () => { this.exited = true; resolve() }))
  }

  get running(): boolean {
    return !this.exited
  }

  /** Whatever the process printed (its errors), for messages. */
  get log(): string {
    return this.output()
  }

  /** Spawns wireguard-go for `name` in the kernel's namespace, with a fresh UAPI socket. */
  static start(name: string, ns: Netns | undefined, log: Logger): UserspaceWireGuard {
    const dir = socketDir(ns)
    mkdirSync(dir, { recursive: true, mode: 0o755 })
    const socket = join(dir, `${name}.sock`)
    rmSync(socket, { force: true })
    const fd = listenUnix(socket)
    let child: ChildProcess
    try {
      // uv_spawn forks on this thread: inside inNetns the child starts in the namespace.
      // setpriv --pdeathsig: the device goes with weftd even when weftd is killed, instead of
      // an orphan wireguard-go nobody configures (and that keeps a test namespace alive).
      const argv = [...(existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'TERM'] : []), ...privateSocketDir(dir), WIREGUARD_GO, '-f', name]
      child = inNetns(ns, () => spawn(argv[0] as string, argv.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe', fd],
        env: { ...process.env, WG_UAPI_FD: '3', WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' },
      }))
    } finally {
      libc().close(fd)
    }
    let output = ''
    const keep = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-4000)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    const dev = new UserspaceWireGuard(name, socket, child, () => output)
    child.on('error', (err: NodeJS.ErrnoException) => { dev.spawnError = err; dev.exited = true })
    child.once('exit', (code, signal) => {
      rmSync(socket, { force: true })
      // Only when empty: flannel-wg-v6's socket may share it.
      if (dir !== SOCKET_ROOT) try { rmdirSync(dir) } catch { /* not empty, or gone */ }
      log.info('wireguard-go exited', { device: name, code, signal, output: output.trim() || undefined })
    })
    return dev
  }

  async configure(change: WireGuardChange): Promise<void> {
    const answer = await this.request(encodeSet(change), 'configure')
    const errno = errnoOf(answer)
    if (errno !== 0) throw new KernelError('configure', `wireguard ${this.name}`, errnoName(Number.isNaN(errno) ? 5 : errno))
  }

  async get(): Promise<WireGuardState> {
    const answer = await this.request('get=1\n\n', 'get')
    if (errnoOf(answer) !== 0) throw new KernelError('get', `wireguard ${this.name}`, errnoName(errnoOf(answer) || 5))
    return decodeGet(answer)
  }

  /** Ends the process (it removes its TUN device) and waits up to 5 s for it. */
  async stop(): Promise<void> {
    if (this.exited) return
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await this.exit
    clearTimeout(timer)
  }

  /** Synchronous stop for Kernel.close(): the process finishes its clean-up on its own. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGTERM')
  }

  private async request(text: string, op: string): Promise<string> {
    try {
      return await uapiRequest(this.socket, text)
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code === 'ENOENT' || !this.running ? 'ENODEV' : 'EIO'
      throw new KernelError(op, `wireguard ${this.name} (wireguard-go, ${this.socket})`, errno, { cause: err })
    }
  }
}

/**
 * wireguard-go watches /var/run/wireguard/<dev>.sock (inotify) and stops when it is missing, so
 * outside the root directory it runs in a mount namespace of its own where our directory is
 * mounted on /var/run/wireguard.
 */
function privateSocketDir(dir: string): string[] {
  if (dir === SOCKET_ROOT) return []
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount --bind "$0" ${SOCKET_ROOT} && exec "$@"`, dir]
}

/** A listening AF_UNIX stream socket bound to `path` (mode 0600), as a raw fd for the child. */
function listenUnix(path: string): number {
  const c = libc()
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)
  if (fd < 0) throw new KernelError('create', `unix socket ${path}`, errnoName(c.errno()))
  const addr = Buffer.alloc(110)
  addr.writeUInt16LE(AF_UNIX, 0)
  const bytes = Buffer.from(path, 'utf8')
  if (bytes.length > 107) throw new KernelError('create', `unix socket ${path}`, 'ENAMETOOLONG')
  bytes.copy(addr, 2)
  if (c.bind(fd, addr, 2 + bytes.length + 1) < 0 || c.listen(fd, 16) < 0) {
    const errno = errnoName(c.errno())
    c.close(fd)
    throw new KernelError('create', `unix socket ${path}`, errno)
  }
  chmodSync(path, 0o600)
  return fd
}
