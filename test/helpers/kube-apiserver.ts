/**
 * Starts the Kubernetes API emulator (test/emulators/kube) for tests: in-process on loopback, or
 * as its own process (optionally inside a network namespace, controlled over a unix-socket admin
 * API). Generates the TLS material with the openssl CLI (EC P-256 CA + server certificate with IP
 * SANs), tokens for the admin and flannel users, kubeconfig and token files. close() — and the
 * process 'exit' hook — kill what was started (by PID) and remove every file.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { issueTestCert, makeTestCa } from './test-certs.ts'
import { KubeEmulator, type KubeEmulatorOptions } from '../emulators/kube/kube-emulator.ts'
import { localAdmin, remoteAdmin, type KubeAdmin } from '../emulators/kube/admin.ts'
import { ADMIN_USER, FLANNEL_RULES, FLANNEL_USER, type UserSpec } from '../emulators/kube/auth.ts'

export interface StartKubeEmulatorOptions extends Omit<KubeEmulatorOptions, 'tls' | 'users'> {
  /** Default 127.0.0.1 (in a netns: the address to listen on there). */
  host?: string
  /** Default 0 (a free port) in-process, 6443 in a netns. */
  port?: number
  /** Default true: HTTPS with a generated CA. */
  tls?: boolean
  /** Run as a separate process inside this network namespace (`ip netns exec`). */
  netns?: string
  /** Run as a separate process in this namespace (what netns does, without the netns). */
  standalone?: boolean
  /** More users besides admin and flannel. */
  users?: UserSpec[]
}

export interface KubeconfigOptions {
  /** 'flannel' (default), 'admin', or the name of another user. */
  user?: string
  /** Use this token instead of the user's current one. */
  token?: string
  /** `tokenFile:` pointing at a file holding the user's token (rewritten by admin.rotateToken). */
  tokenFile?: boolean
  /** certificate-authority-data instead of certificate-authority (default false). */
  embedCa?: boolean
  /** Server URL to write (default the emulator's). */
  server?: string
  /** A client certificate for this CN/O instead of a token. */
  clientCert?: { cn: string; orgs?: string[] }
}

export interface KubeApiServer {
  url: string
  caFile: string
  caPem: string
  /** Current tokens (updated by admin.rotateToken). */
  tokens: { flannel: string; admin: string; [user: string]: string }
  admin: KubeAdmin
  /** PID of the emulator process (standalone/netns), undefined in-process. */
  pid: number | undefined
  /** Writes a kubeconfig (YAML, as kubectl writes it) and returns its path. */
  kubeconfig(opts?: KubeconfigOptions): string
  /** A file holding the user's current token; admin.rotateToken rewrites it. */
  tokenFile(user?: string): string
  /** Issues a client certificate signed by the CA. */
  clientCert(cn: string, orgs?: string[]): { certFile: string; keyFile: string }
  close(): Promise<void>
}

const live = new Map<number, ChildProcess>()
const dirs = new Set<string>()
let hooked = false

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const pid of live.keys()) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
}

const issue = (dir: string, name: string, subj: string, ext: string): void => issueTestCert(dir, name, subj, ext, 2)

function makeCerts(dir: string, host: string): void {
  makeTestCa(dir, 'weft-kube-test-ca', 2)
  const ips = [...new Set([host, '127.0.0.1'])].filter((h) => /^[\d.]+$|:/.test(h)).map((h) => `IP:${h}`)
  issue(dir, 'server', '/CN=kube-apiserver', `subjectAltName=${[...ips, 'DNS:localhost', 'DNS:kubernetes', 'DNS:kubernetes.default'].join(',')}\nextendedKeyUsage=serverAuth\n`)
}

const yamlString = (s: string): string => JSON.stringify(s)

export async function startKubeEmulator(opts: StartKubeEmulatorOptions = {}): Promise<KubeApiServer> {
  hookExit()
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-'))
  dirs.add(dir)
  const separate = opts.netns !== undefined || opts.standalone === true
  const host = opts.host ?? '127.0.0.1'
  const port = opts.port ?? (opts.netns ? 6443 : 0)
  const tls = opts.tls ?? true
  const tokens: KubeApiServer['tokens'] = { flannel: randomBytes(24).toString('base64url'), admin: randomBytes(24).toString('base64url') }
  const users: UserSpec[] = [
    { name: ADMIN_USER, groups: ['system:masters'], token: tokens.admin },
    { name: FLANNEL_USER, groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-flannel'], rules: FLANNEL_RULES, token: tokens.flannel },
    ...(opts.users ?? []).map((u) => ({ ...u, token: u.token ?? randomBytes(24).toString('base64url') })),
  ]
  for (const u of opts.users ?? []) tokens[u.name] = users.find((x) => x.name === u.name)!.token!
  const nameOf = (user: string): string => (user === 'flannel' ? FLANNEL_USER : user === 'admin' ? ADMIN_USER : user)
  const aliasOf = (name: string): string => (name === FLANNEL_USER ? 'flannel' : name === ADMIN_USER ? 'admin' : name)
  const tokenFiles = new Map<string, string>()
  let child: ChildProcess | undefined
  let emu: KubeEmulator | undefined
  let closed = false

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child!.once('exit', () => r()))
      child.kill('SIGTERM')
      const t = setTimeout(() => child?.kill('SIGKILL'), 3000)
      await gone
      clearTimeout(t)
    }
    if (child?.pid !== undefined) live.delete(child.pid)
    await emu?.close()
    rmSync(dir, { recursive: true, force: true })
    dirs.delete(dir)
  }

  try {
    if (tls) makeCerts(dir, host)
    const { netns: _n, standalone: _s, tls: _t, users: _u, ...rest } = opts
    const emuOpts: KubeEmulatorOptions = { ...rest, host, port, users }
    let url: string
    let admin: KubeAdmin
    if (!separate) {
      emu = await KubeEmulator.start({
        ...emuOpts,
        ...(tls ? { tls: { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')), ca: readFileSync(join(dir, 'ca.crt')) } } : {}),
      })
      url = emu.url
      admin = localAdmin(emu)
    } else {
      const config = join(dir, 'options.json')
      writeFileSync(config, JSON.stringify(emuOpts))
      const socket = join(dir, 'admin.sock')
      const main = resolve(import.meta.dirname, '../emulators/kube/main.ts')
      const listen = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
      const argv = ['--pdeathsig', 'KILL', process.execPath, '--import', 'tsx', main, '--listen', listen, '--admin-socket', socket, '--config', config, ...(tls ? ['--tls-dir', dir] : [])]
      const [cmd, args] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, 'setpriv', ...argv]] as const : ['setpriv', argv] as const
      const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: resolve(import.meta.dirname, '../..') })
      child = proc
      if (proc.pid !== undefined) live.set(proc.pid, proc)
      proc.once('exit', () => { if (proc.pid !== undefined) live.delete(proc.pid) })
      url = await new Promise<string>((res, rej) => {
        let out = ''
        let err = ''
        const timer = setTimeout(() => rej(new Error(`kube emulator not ready within 15 s: ${err}`)), 15_000)
        proc.stderr!.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-4000) })
        proc.stdout!.on('data', (c: Buffer) => {
          out += c.toString()
          const m = /^ready (\S+)$/m.exec(out)
          if (m) { clearTimeout(timer); res(m[1]!) }
        })
        proc.once('exit', (code, sig) => { clearTimeout(timer); rej(new Error(`kube emulator exited (${code ?? sig}) during startup: ${err.trim()}`)) })
      })
      proc.stdout!.resume()
      admin = remoteAdmin(socket)
    }
    // Token rotation also rewrites the token files the helper handed out.
    const rotate = admin.rotateToken.bind(admin)
    admin.rotateToken = async (user = FLANNEL_USER) => {
      const name = nameOf(user)
      const t = await rotate(name)
      tokens[aliasOf(name)] = t
      const file = tokenFiles.get(name)
      if (file) { writeFileSync(`${file}.tmp`, t); renameSync(`${file}.tmp`, file) }
      return t
    }
    const caFile = join(dir, 'ca.crt')
    const caPem = tls ? readFileSync(caFile, 'utf8') : ''
    let seq = 0
    const server: KubeApiServer = {
      url, caFile, caPem, tokens, admin, pid: child?.pid,
      tokenFile(user = 'flannel') {
        const name = nameOf(user)
        let file = tokenFiles.get(name)
        if (!file) { file = join(dir, `token-${aliasOf(name).replace(/[^\w.-]/g, '_')}`); tokenFiles.set(name, file) }
        writeFileSync(file, tokens[aliasOf(name)] ?? '')
        return file
      },
      clientCert(cn, orgs = []) {
        const name = `client-${++seq}`
        const subj = `/CN=${cn}${orgs.map((o) => `/O=${o}`).join('')}`
        issue(dir, name, subj, 'extendedKeyUsage=clientAuth\n')
        return { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) }
      },
      kubeconfig(k = {}) {
        const alias = k.user ?? 'flannel'
        const name = nameOf(alias)
        const cluster = tls
          ? (k.embedCa ? `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}\n` : `    certificate-authority: ${yamlString(caFile)}\n`)
          : ''
        let userBlock: string
        if (k.clientCert) {
          const c = server.clientCert(k.clientCert.cn, k.clientCert.orgs)
          userBlock = `    client-certificate: ${yamlString(c.certFile)}\n    client-key: ${yamlString(c.keyFile)}\n`
        } else if (k.tokenFile) userBlock = `    tokenFile: ${yamlString(server.tokenFile(alias))}\n`
        else userBlock = `    token: ${yamlString(k.token ?? tokens[aliasOf(name)] ?? '')}\n`
        const ctx = `${aliasOf(name)}@weft-test`
        const yaml = `apiVersion: v1\nclusters:\n- cluster:\n${cluster}    server: ${k.server ?? url}\n  name: weft-test\ncontexts:\n- context:\n    cluster: weft-test\n    user: ${aliasOf(name)}\n  name: ${ctx}\ncurrent-context: ${ctx}\nkind: Config\npreferences: {}\nusers:\n- name: ${aliasOf(name)}\n  user:\n${userBlock}`
        const file = join(dir, `kubeconfig-${++seq}.yaml`)
        writeFileSync(file, yaml)
        return file
      },
      close,
    }
    return server
  } catch (err) {
    await close()
    throw err
  }
}
