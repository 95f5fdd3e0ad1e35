/**
 * Starts a throwaway single-member etcd (the installed 3.4 binary) for integration tests.
 * Ports are probed free on the host (client and peer), so parallel test files don't collide;
 * every server is killed and its data dir removed when the test process exits.
 */
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface StartEtcdOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string
  /** Client port; default: a free port. */
  port?: number
  /** Run inside `ip netns exec <ns>` (then `host` must be reachable inside that namespace). */
  netns?: string
  /** Data directory; default: a fresh temp dir. */
  dataDir?: string
  /** Serve clients over TLS with these PEM files (endpoint becomes https://). */
  tls?: { certFile: string; keyFile: string; caFile?: string; clientCertAuth?: boolean; clientCertFile?: string; clientKeyFile?: string }
  /** More etcd flags, e.g. ['--auth-token-ttl', '2']. */
  extraArgs?: string[]
}

export interface EtcdServer {
  /** Client URL, e.g. http://127.0.0.1:23791 */
  endpoint: string
  /** PID of the etcd process (changes after `start()`). */
  pid: number
  dataDir: string
  /** SIGTERM and wait for exit; the data dir is kept. */
  stop(): Promise<void>
  /** Starts again on the same data dir and ports. */
  start(): Promise<void>
  /** Stops and removes the data dir. */
  destroy(): Promise<void>
  /** Compacts the key space up to the current revision. */
  compact(): Promise<void>
}

let skipReason: string | false | undefined

/** Why etcd tests cannot run here (no etcd/etcdctl/setpriv binary), or false when they can. */
export function etcdSkipReason(): string | false {
  if (skipReason !== undefined) return skipReason
  skipReason = false
  for (const [bin, arg] of [['etcd', '--version'], ['etcdctl', 'version'], ['setpriv', '--version']] as const) {
    const r = spawnSync(bin, [arg], { stdio: 'ignore', env: { ...process.env, ETCDCTL_API: '3' } })
    if (r.error || r.status !== 0) {
      skipReason = `${bin} is not installed (scripts/setup.sh installs etcd-server and etcd-client)`
      break
    }
  }
  return skipReason
}

const live = new Map<number, ChildProcess>()
const dirs = new Set<string>()
let hooked = false

function hookExit(): void {
  if (hooked) return
  hooked = true
  const cleanup = (): void => {
    for (const [pid] of live) {
      try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
    live.clear()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
    dirs.clear()
  }
  process.on('exit', cleanup)
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => {
      cleanup()
      // Other helpers may still be cleaning up (netns, devices): exit only if nobody else listens.
      if (process.listenerCount(sig) === 0) process.exit(code)
    })
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

interface ClientTls { ca?: Buffer; cert?: Buffer; key?: Buffer }

function httpJson(url: string, method: 'GET' | 'POST', body?: unknown, tls?: ClientTls): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest
    const req = request(url, { method, timeout: 1000, headers: { 'content-type': 'application/json' }, ...(tls ?? {}) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
        } catch (err) {
          reject(err)
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

function etcdctlInNs(netns: string, endpoint: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', netns, 'etcdctl', `--endpoints=${endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 5000 }, (err, stdout) => {
      if (err) reject(err)
      else resolve(stdout)
    })
  })
}

/** Starts etcd and resolves once it answers /health. */
export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdServer> {
  hookExit()
  const host = opts.host ?? '127.0.0.1'
  const ownDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'weft-etcd-'))
  if (ownDir) dirs.add(dataDir)
  const urlHost = host.includes(':') ? `[${host}]` : host
  const scheme = opts.tls ? 'https' : 'http'
  const clientTls: ClientTls | undefined = opts.tls && {
    ...(opts.tls.caFile ? { ca: readFileSync(opts.tls.caFile) } : {}),
    ...(opts.tls.clientCertFile ? { cert: readFileSync(opts.tls.clientCertFile) } : {}),
    ...(opts.tls.clientKeyFile ? { key: readFileSync(opts.tls.clientKeyFile) } : {}),
  }
  const tlsArgs = opts.tls
    ? ['--cert-file', opts.tls.certFile, '--key-file', opts.tls.keyFile,
      ...(opts.tls.caFile ? ['--trusted-ca-file', opts.tls.caFile] : []),
      ...(opts.tls.clientCertAuth ? ['--client-cert-auth'] : [])]
    : []
  // In a fresh netns nothing listens, so fixed defaults are fine there; on the host probe free ports.
  let port = opts.port ?? (opts.netns ? 2379 : await freePort(host))
  let peerPort = opts.netns ? port + 1 : await freePort(host)
  let child: ChildProcess | undefined

  const launch = async (): Promise<void> => {
    const endpoint = `${scheme}://${urlHost}:${port}`
    const peer = `http://${urlHost}:${peerPort}`
    const args = [
      '--name', 'weft-test', '--data-dir', dataDir,
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `weft-test=${peer}`, '--initial-cluster-state', 'new',
      '--logger', 'zap', '--log-level', 'error',
      ...tlsArgs, ...(opts.extraArgs ?? []),
    ]
    // pdeathsig: etcd dies with the test process even if that one is SIGKILLed.
    const argv = ['--pdeathsig', 'KILL', 'etcd', ...args]
    const cmd = opts.netns ? 'ip' : 'setpriv'
    const full = opts.netns ? ['netns', 'exec', opts.netns, 'setpriv', ...argv] : argv
    const proc = spawn(cmd, full, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    proc.stderr?.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000) })
    let exited = false
    proc.once('exit', () => {
      exited = true
      if (proc.pid !== undefined) live.delete(proc.pid)
    })
    if (proc.pid === undefined) throw new Error(`etcd did not start: ${stderr}`)
    live.set(proc.pid, proc)
    child = proc
    server.pid = proc.pid
    server.endpoint = endpoint
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      if (exited) throw new Error(`etcd exited during startup: ${stderr.trim()}`)
      try {
        if (opts.netns) {
          await etcdctlInNs(opts.netns, endpoint, ['endpoint', 'health'])
          return
        }
        const health = (await httpJson(`${endpoint}/health`, 'GET', undefined, clientTls)) as { health?: string }
        if (health.health === 'true') return
      } catch { /* not up yet */ }
      await sleep(100)
    }
    await stopChild()
    throw new Error(`etcd not healthy within 15 s: ${stderr.trim()}`)
  }

  const stopChild = async (): Promise<void> => {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const gone = new Promise<void>((r) => proc.once('exit', () => r()))
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }

  const server: EtcdServer = {
    endpoint: '',
    pid: 0,
    dataDir,
    stop: stopChild,
    start: async () => {
      if (child) return
      await launch()
    },
    destroy: async () => {
      await stopChild()
      rmSync(dataDir, { recursive: true, force: true })
      dirs.delete(dataDir)
    },
    compact: async () => {
      if (opts.netns) {
        const out = await etcdctlInNs(opts.netns, server.endpoint, ['endpoint', 'status', '-w', 'json'])
        const rev = (JSON.parse(out) as Array<{ Status: { header: { revision: number } } }>)[0]?.Status.header.revision
        await etcdctlInNs(opts.netns, server.endpoint, ['compact', String(rev)])
        return
      }
      const status = (await httpJson(`${server.endpoint}/v3/maintenance/status`, 'POST', {}, clientTls)) as { header: { revision: string } }
      await httpJson(`${server.endpoint}/v3/kv/compaction`, 'POST', { revision: status.header.revision, physical: true }, clientTls)
    },
  }

  // A probed port can be taken between probe and bind by a parallel test file: retry with new ports.
  for (let attempt = 0; ; attempt++) {
    try {
      await launch()
      return server
    } catch (err) {
      const canRetry = attempt < 2 && opts.port === undefined && !opts.netns && ownDir
      if (ownDir) rmSync(dataDir, { recursive: true, force: true })
      if (!canRetry) {
        dirs.delete(dataDir)
        throw err
      }
      port = await freePort(host)
      peerPort = await freePort(host)
    }
  }
}
