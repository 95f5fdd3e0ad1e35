/**
 * A Kubernetes API server emulator (core/v1 nodes, nodes/status, pods) for tests, faithful to the
 * REST wire protocol: HTTPS (HTTP/2 with HTTP/1.1 fallback, as kube-apiserver), bearer-token and
 * client-certificate authentication, RBAC, Status errors, content negotiation, discovery, health
 * endpoints, and fault injection / request counters for tests. See resource-api.ts for the REST
 * semantics and admin.ts for the control API.
 */
import { randomUUID } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createSecureServer, type Http2SecureServer } from 'node:http2'
import type { Socket, AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { Authenticator, DEFAULT_USERS, type User, type UserSpec } from './auth.ts'
import { NodeIpam, type IpamConfig } from './node-ipam.ts'
import { ObjectStore } from './object-store.ts'
import { ResourceApi, type ApiTuning } from './resource-api.ts'
import { NODES, PODS, type ResourceDef } from './resources.ts'
import {
  ApiError, failure, forbidden, internalError, methodNotAllowed, notAcceptable, serverNotFound, serviceUnavailable, tooManyRequests, unauthorized, unsupportedMediaType,
  type StatusBody,
} from './status.ts'
import { parseJson, type Json, type JsonMap } from './strategic-merge.ts'

export interface KubeEmulatorOptions {
  host?: string
  port?: number
  /** PEM server key/cert; without them the emulator speaks plain HTTP. */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer }
  /** Accept client certificates signed by tls.ca (user = CN, groups = O). */
  clientCertAuth?: boolean
  users?: UserSpec[]
  /** --anonymous-auth: without it a request without credentials is 401. */
  anonymousAuth?: boolean
  ipam?: IpamConfig
  ipamDelayMs?: number
  tuning?: Partial<ApiTuning>
  /** Events kept for watches/MVCC reads before the oldest are forgotten. */
  historyLimit?: number
  gitVersion?: string
}

export interface FaultSpec {
  /** HTTP status to answer with: 429, 500, 503, ... */
  code: number
  /** How many requests (default 1). */
  count?: number
  verb?: string
  resource?: string
  retryAfterSeconds?: number
  message?: string
  /** 'apf': the priority-and-fairness filter's plain-text 429; default a Status object. */
  form?: 'status' | 'apf'
}

interface RequestInfo {
  verb: string
  resource: string
  subresource: string | undefined
  namespace: string | undefined
  name: string | undefined
  def: ResourceDef | undefined
}

const RESOURCES: Record<string, ResourceDef> = { nodes: NODES, pods: PODS }
const ACCEPTED = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']
const MAX_BODY = 3 * 1024 * 1024

type AnyServer = Server | Http2SecureServer

export class KubeEmulator {
  readonly store: ObjectStore
  readonly api: ResourceApi
  readonly auth: Authenticator
  readonly ipam: NodeIpam
  private server!: AnyServer
  private readonly sockets = new Set<Socket>()
  private faults: Array<FaultSpec & { remaining: number }> = []
  private readonly counts = new Map<string, number>()
  private mode: 'up' | 'down' | 'hang' = 'up'
  private readonly held = new Set<ServerResponse>()
  private boundPort = 0
  url = ''

  private constructor(private readonly opts: KubeEmulatorOptions) {
    this.store = new ObjectStore(opts.historyLimit ?? 100_000, 100)
    this.api = new ResourceApi(this.store, {
      tooLargeWaitMs: 3000, bookmarkIntervalMs: 60_000, minRequestTimeoutMs: 1_800_000, maxQueuedEvents: 50_000, watchList: true, ...opts.tuning,
    })
    this.auth = new Authenticator(opts.users ?? DEFAULT_USERS())
    this.ipam = new NodeIpam(this.store, (name, cidrs) => this.assignPodCidrs(name, cidrs), opts.ipamDelayMs ?? 0)
    this.ipam.configure(opts.ipam)
  }

  static async start(opts: KubeEmulatorOptions = {}): Promise<KubeEmulator> {
    const emu = new KubeEmulator(opts)
    const handler = (req: IncomingMessage, res: ServerResponse): void => void emu.handle(req, res)
    emu.server = opts.tls
      ? createSecureServer({ key: opts.tls.key, cert: opts.tls.cert, ...(opts.tls.ca ? { ca: opts.tls.ca } : {}), allowHTTP1: true, requestCert: !!opts.clientCertAuth, rejectUnauthorized: false }, handler as never)
      : createHttpServer(handler)
    emu.server.on(opts.tls ? 'secureConnection' : 'connection', (s: Socket) => {
      emu.sockets.add(s)
      s.on('close', () => emu.sockets.delete(s))
    })
    await emu.listen(opts.port ?? 0)
    const host = opts.host ?? '127.0.0.1'
    emu.url = `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${emu.boundPort}`
    return emu
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, this.opts.host ?? '127.0.0.1', () => {
        this.server.off('error', reject)
        this.boundPort = (this.server.address() as AddressInfo).port
        resolve()
      })
    })
  }

  /** The API goes away: 'down' stops listening and drops every connection; 'hang' accepts but never answers. */
  async down(mode: 'down' | 'hang' = 'down'): Promise<void> {
    this.mode = mode
    this.api.closeWatches()
    if (mode === 'down') {
      const closed = new Promise<void>((r) => this.server.close(() => r()))
      for (const s of this.sockets) s.destroy()
      await closed
    }
  }

  /** Back on the same address. */
  async up(): Promise<void> {
    const wasDown = this.mode === 'down'
    this.mode = 'up'
    for (const res of this.held) res.destroy()
    this.held.clear()
    if (wasDown) await this.listen(this.boundPort)
  }

  failNext(f: FaultSpec): void { this.faults.push({ ...f, remaining: f.count ?? 1 }) }

  requestCounts(): Record<string, number> { return Object.fromEntries([...this.counts].sort()) }
  resetRequestCounts(): void { this.counts.clear() }

  async close(): Promise<void> {
    this.ipam.configure(undefined)
    this.api.closeWatches()
    for (const res of this.held) res.destroy()
    if (!this.server.listening) return
    const closed = new Promise<void>((r) => this.server.close(() => r()))
    for (const s of this.sockets) s.destroy()
    await closed
  }

  /** The node IPAM's write: an update of spec.podCIDR(s) as the controller's PATCH does. */
  assignPodCidrs(name: string, cidrs: string[]): void {
    const cur = this.store.get('nodes', name)
    if (!cur) return
    const spec = { ...((cur.obj.spec ?? {}) as JsonMap), podCIDR: cidrs[0]!, podCIDRs: cidrs }
    this.api.commit(NODES, { ...cur.obj, spec }, cur)
  }

  private count(info: RequestInfo): void {
    const key = `${info.verb} ${info.resource}${info.subresource ? `/${info.subresource}` : ''}`
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
  }

  private send(res: ServerResponse, code: number, body: string, headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return
    res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Content-Length': String(Buffer.byteLength(body)), ...headers })
    res.end(body)
  }

  private sendStatus(res: ServerResponse, err: ApiError): void {
    const plain = (err as ApiError & { plainText?: string }).plainText
    if (plain !== undefined) {
      if (res.headersSent) return
      res.writeHead(err.code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...err.headers })
      res.end(plain)
      return
    }
    this.send(res, err.code, `${JSON.stringify(err.body)}\n`, err.headers)
  }

  private authenticate(req: IncomingMessage): User {
    const h = req.headers.authorization
    if (h !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(h)
      const user = m ? this.auth.byBearer(m[1]!) : undefined
      if (!user) throw unauthorized()
      return user
    }
    const sock = req.socket as TLSSocket
    if (this.opts.clientCertAuth && sock.authorized) {
      const cert = sock.getPeerCertificate()
      const subject = (cert?.subject ?? {}) as unknown as Record<string, string | string[]>
      const cn = subject.CN
      if (typeof cn === 'string' && cn) {
        const o = subject.O
        return this.auth.byCertificate(cn, o === undefined ? [] : Array.isArray(o) ? o : [o])
      }
    }
    if (this.opts.anonymousAuth) return { name: 'system:anonymous', groups: ['system:unauthenticated'] }
    throw unauthorized()
  }

  private requestInfo(method: string, path: string, q: URLSearchParams): RequestInfo | undefined {
    const parts = path.split('/').filter(Boolean)
    if (parts[0] !== 'api' || parts[1] !== 'v1' || parts.length < 3) return undefined
    let rest = parts.slice(2)
    let namespace: string | undefined
    if (rest[0] === 'namespaces' && rest.length >= 3) { namespace = decodeURIComponent(rest[1]!); rest = rest.slice(2) }
    const [resource, name, subresource, ...extra] = rest.map(decodeURIComponent) as [string, string | undefined, string | undefined]
    if (extra.length > 0) return undefined
    const watch = q.get('watch') === 'true' || q.get('watch') === '1'
    const verb = { GET: name ? 'get' : watch ? 'watch' : 'list', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' }[method] ?? method.toLowerCase()
    // Like the real RequestInfo: a metadata.name field selector names the object of a list/watch.
    let effectiveName = name
    if (!name && (verb === 'list' || verb === 'watch')) {
      const m = /(?:^|,)metadata\.name==?([^,]+)/.exec(q.get('fieldSelector') ?? '')
      if (m) effectiveName = m[1]
    }
    const def = RESOURCES[resource]
    const wrongScope = def !== undefined && def.namespaced !== (namespace !== undefined) && !(def.namespaced && !name && namespace === undefined)
    return { verb, resource, subresource, namespace, name: effectiveName, def: wrongScope ? undefined : def }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.mode === 'hang') { this.held.add(res); return }
    if (this.mode === 'down') { res.destroy(); return }
    res.setHeader('Audit-Id', randomUUID())
    try {
      const url = new URL(req.url ?? '/', 'http://x')
      const q = url.searchParams
      const method = req.method ?? 'GET'
      const user = this.authenticate(req)
      const info = this.requestInfo(method, url.pathname, q)
      if (info) this.count(info)
      this.injectFault(info)
      if (!info) return this.nonResource(method, url.pathname, user, res)
      if (!this.auth.allowed(user, info.verb, info.resource, info.subresource, info.name)) {
        throw forbidden({ user: user.name, verb: info.verb, resource: info.resource, ...(info.subresource ? { subresource: info.subresource } : {}), ...(info.name ? { name: info.name } : {}), ...(info.namespace ? { namespace: info.namespace } : {}) })
      }
      this.negotiate(req)
      await this.resource(req, res, info, q)
    } catch (err) {
      if (err instanceof ApiError) return this.sendStatus(res, err)
      this.sendStatus(res, internalError((err as Error).message))
    }
  }

  private injectFault(info: RequestInfo | undefined): void {
    const f = this.faults.find((x) => (!x.verb || x.verb === info?.verb) && (!x.resource || x.resource === info?.resource))
    if (!f) return
    if (--f.remaining <= 0) this.faults.splice(this.faults.indexOf(f), 1)
    const retry = f.retryAfterSeconds ?? 1
    if (f.code === 429 && f.form === 'apf') {
      throw Object.assign(new ApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code: 429 }, { 'Retry-After': String(retry) }), { plainText: 'Too many requests, please try again later.\n' })
    }
    if (f.code === 429) throw tooManyRequests(retry, f.message)
    if (f.code === 500) throw internalError(f.message ?? 'etcdserver: request timed out')
    if (f.code === 503) throw Object.assign(serviceUnavailable(f.message ?? 'the server is currently unable to handle the request'), { headers: { 'Retry-After': String(retry) } })
    throw failure(f.code, f.message ? undefined : 'InternalError', f.message ?? `injected failure ${f.code}`)
  }

  private negotiate(req: IncomingMessage): void {
    const accept = req.headers.accept
    if (!accept) return
    const types = accept.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase())
    if (types.some((t) => t === 'application/json' || t === '*/*' || t === 'application/*')) return
    // The real server would also answer yaml and protobuf; the emulator speaks JSON only.
    throw notAcceptable(ACCEPTED)
  }

  private nonResource(method: string, path: string, user: User, res: ServerResponse): void {
    const text = (body: string): void => {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache, private' })
      res.end(body)
    }
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed()
    if (['/healthz', '/livez', '/readyz'].includes(path)) return text('ok')
    if (user.name === 'system:anonymous' && path !== '/version') throw failure(403, 'Forbidden', `forbidden: User "system:anonymous" cannot get path "${path}"`, {})
    const json = (o: unknown): void => this.send(res, 200, `${JSON.stringify(o)}\n`)
    const git = this.opts.gitVersion ?? 'v1.29.14'
    const [maj, min] = git.replace(/^v/, '').split('.') as [string, string]
    if (path === '/version') return json({ major: maj, minor: min, gitVersion: git, gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean', buildDate: '2025-01-01T00:00:00Z', goVersion: 'go1.22.10', compiler: 'gc', platform: 'linux/amd64' })
    if (path === '/api') return json({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace(/^https?:\/\//, '') }] })
    if (path === '/apis') return json({ kind: 'APIGroupList', apiVersion: 'v1', groups: [] })
    if (path === '/api/v1') {
      const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']
      return json({ kind: 'APIResourceList', groupVersion: 'v1', resources: [
        { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs, shortNames: ['no'] },
        { name: 'nodes/status', singularName: '', namespaced: false, kind: 'Node', verbs: ['get', 'patch', 'update'] },
        { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs, shortNames: ['po'], categories: ['all'] },
        { name: 'pods/status', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'patch', 'update'] },
      ] })
    }
    if (path.startsWith('/api/')) throw serverNotFound()
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' })
    res.end('404 page not found\n')
  }

  private async body(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length
      if (size > MAX_BODY) throw failure(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728')
      chunks.push(c)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  private async resource(req: IncomingMessage, res: ServerResponse, info: RequestInfo, q: URLSearchParams): Promise<void> {
    const def = info.def
    if (!def) throw serverNotFound()
    const sub = info.subresource
    if (sub !== undefined && sub !== 'status') throw serverNotFound()
    const status = sub === 'status' ? 'status' as const : undefined
    const name = info.verb === 'list' || info.verb === 'watch' ? undefined : info.name
    const ns = info.namespace
    const obj = (o: { json: string }, code = 200, warnings: string[] = []): void =>
      this.send(res, code, `${o.json}\n`, warnings.length ? { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') } : {})
    const readJson = async (): Promise<Json> => {
      const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase()
      if (ct !== 'application/json') throw unsupportedMediaType(ACCEPTED)
      return parseJson(await this.body(req))
    }
    switch (info.verb) {
      case 'list': return this.send(res, 200, await this.api.list(def, ns, q))
      case 'watch': return this.api.watch(def, ns, q, res)
      case 'get': return obj(this.api.get(def, ns, name!))
      case 'create': {
        if (name) throw methodNotAllowed()
        const r = this.api.create(def, ns, await readJson())
        return obj(r.object, 201, r.warnings)
      }
      case 'update': { const r = this.api.update(def, ns, name!, await readJson(), status); return obj(r.object, 200, r.warnings) }
      case 'patch': {
        if (!name) throw methodNotAllowed()
        const r = this.api.patch(def, ns, name, req.headers['content-type'] ?? '', await this.body(req), status)
        return obj(r.object, 200, r.warnings)
      }
      case 'delete': {
        const text = await this.body(req)
        const { status: out } = this.api.delete(def, ns, name!, text.trim() ? parseJson(text) : undefined)
        return 'json' in out ? obj(out) : this.send(res, 200, `${JSON.stringify(out as StatusBody)}\n`)
      }
      default: throw methodNotAllowed()
    }
  }
}
