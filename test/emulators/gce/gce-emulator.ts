/**
 * A local Compute Engine + metadata server for tests: the subset of the real wire protocol the
 * gce backend uses (REST JSON compute/v1: routes get/list/insert/delete, networks get,
 * instances get, globalOperations get; metadata /computeMetadata/v1 with Metadata-Flavor).
 * It keeps state, checks what the real API checks (auth, required fields, unknown resources,
 * name conflicts, quota) and answers in Google's error shape. Listens on 127.0.0.1, port 0.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const LINK = 'https://www.googleapis.com/compute/v1'

export interface GceRouteRecord {
  name: string
  destRange: string
  network: string
  nextHopInstance?: string
  nextHopGateway?: string
  priority: number
  id: string
  selfLink: string
}

interface OperationRecord {
  name: string
  status: 'PENDING' | 'RUNNING' | 'DONE'
  operationType: string
  targetLink: string
  /** Applied when the operation reaches DONE (as the real API makes the change visible then). */
  apply: () => { code: string; message: string } | undefined
  error?: { code: string; message: string }
}

export interface EmulatorCall {
  readonly api: 'metadata' | 'compute'
  readonly method: string
  readonly path: string
  readonly body?: unknown
}

interface Fault {
  method?: string
  pathIncludes: string
  status: number
  reason: string
  message: string
  remaining: number
}

export interface GceEmulatorOptions {
  project?: string
  projectNumber?: string
  zone?: string
  network?: string
  instance?: string
  /** Routes quota of the project (GCE default 100). */
  routeQuota?: number
  /** How many operation polls stay PENDING/RUNNING before DONE (default 1 each). */
  pollsPerStage?: number
}

export class GceEmulator {
  readonly project: string
  readonly projectNumber: string
  readonly zone: string
  readonly network: string
  readonly instance: string
  readonly token = 'ya29.emulator-token'
  routeQuota: number
  pollsPerStage: number
  readonly routes = new Map<string, GceRouteRecord>()
  readonly instances = new Set<string>()
  readonly networks = new Set<string>()
  readonly operations = new Map<string, OperationRecord & { polls: number }>()
  readonly calls: EmulatorCall[] = []
  /** Called for every request after it is logged (lets a test act at an exact point). */
  onCall: ((call: EmulatorCall) => void) | undefined
  private faults: Fault[] = []
  private seq = 0
  private server!: Server
  url = ''

  private constructor(opts: GceEmulatorOptions) {
    this.project = opts.project ?? 'weft-test'
    this.projectNumber = opts.projectNumber ?? '123456789012'
    this.zone = opts.zone ?? 'us-central1-a'
    this.network = opts.network ?? 'default'
    this.instance = opts.instance ?? 'node-1'
    this.routeQuota = opts.routeQuota ?? 100
    this.pollsPerStage = opts.pollsPerStage ?? 1
    this.networks.add(this.network)
    this.instances.add(`${this.zone}/${this.instance}`)
    // Every GCE network starts with a default route to the internet gateway; it counts too.
    this.putRoute({ name: 'default-route-0a1b2c', destRange: '0.0.0.0/0', network: this.networkLink(this.network), nextHopGateway: `${LINK}/projects/${this.project}/global/gateways/default-internet-gateway`, priority: 1000 })
  }

  static async start(opts: GceEmulatorOptions = {}): Promise<GceEmulator> {
    const emu = new GceEmulator(opts)
    emu.server = createServer((req, res) => void emu.handle(req, res))
    await new Promise<void>((resolve) => emu.server.listen(0, '127.0.0.1', resolve))
    emu.url = `http://127.0.0.1:${(emu.server.address() as AddressInfo).port}`
    return emu
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  networkLink(name: string): string { return `${LINK}/projects/${this.project}/global/networks/${name}` }
  instanceLink(name: string, zone = this.zone): string { return `${LINK}/projects/${this.project}/zones/${zone}/instances/${name}` }

  /** Adds a route directly (test setup), bypassing operations. */
  putRoute(r: Omit<GceRouteRecord, 'id' | 'selfLink'>): void {
    this.routes.set(r.name, { ...r, id: String(1000 + this.seq++), selfLink: `${LINK}/projects/${this.project}/global/routes/${r.name}` })
  }

  /** The next `times` requests whose path contains `pathIncludes` fail with this error. */
  failNext(pathIncludes: string, status: number, reason: string, message: string, opts: { method?: string; times?: number } = {}): void {
    this.faults.push({ pathIncludes, status, reason, message, remaining: opts.times ?? 1, ...(opts.method ? { method: opts.method } : {}) })
  }

  /** Compute calls other than reads, as `METHOD path` strings. */
  mutations(): string[] {
    return this.calls.filter((c) => c.api === 'compute' && c.method !== 'GET').map((c) => `${c.method} ${c.path}`)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x')
    const raw = await readBody(req)
    const path = url.pathname
    const api = path.startsWith('/computeMetadata/') ? 'metadata' : 'compute'
    let body: unknown
    try {
      body = raw === '' ? undefined : JSON.parse(raw)
    } catch {
      return sendError(res, 400, 'parseError', 'Invalid JSON payload received.')
    }
    const call: EmulatorCall = { api, method: req.method ?? 'GET', path, ...(body === undefined ? {} : { body }) }
    this.calls.push(call)
    this.onCall?.(call)
    const fault = this.faults.find((f) => path.includes(f.pathIncludes) && (f.method === undefined || f.method === req.method))
    if (fault) {
      if (--fault.remaining <= 0) this.faults = this.faults.filter((f) => f !== fault)
      return sendError(res, fault.status, fault.reason, fault.message)
    }
    if (api === 'metadata') return this.metadata(req, res, path)
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return sendError(res, 401, 'required', 'Request is missing required authentication credential. Expected OAuth 2 access token.', 'UNAUTHENTICATED')
    }
    return this.compute(req.method ?? 'GET', path, url, body, res)
  }

  private metadata(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (req.headers['metadata-flavor'] !== 'Google') {
      res.writeHead(403, { 'content-type': 'text/html' }).end('Missing required header: Metadata-Flavor')
      return
    }
    const values: Record<string, string> = {
      'project/project-id': this.project,
      'project/numeric-project-id': this.projectNumber,
      'instance/zone': `projects/${this.projectNumber}/zones/${this.zone}`,
      'instance/name': this.instance,
      'instance/hostname': `${this.instance}.${this.zone}.c.${this.project}.internal`,
      'instance/network-interfaces/0/network': `projects/${this.projectNumber}/networks/${this.network}`,
      'instance/service-accounts/default/token': JSON.stringify({ access_token: this.token, expires_in: 3599, token_type: 'Bearer' }),
    }
    const value = values[path.slice('/computeMetadata/v1/'.length)]
    if (value === undefined) {
      res.writeHead(404, { 'content-type': 'text/html', 'metadata-flavor': 'Google' }).end('Not Found')
      return
    }
    res.writeHead(200, { 'content-type': 'application/text', 'metadata-flavor': 'Google' }).end(value)
  }

  private compute(method: string, path: string, url: URL, body: unknown, res: ServerResponse): void {
    const m = /^\/compute\/v1\/projects\/([^/]+)\/(.*)$/.exec(path)
    if (!m) return sendError(res, 404, 'notFound', `The requested URL ${path} was not found on this server.`)
    const [, project, rest] = m as unknown as [string, string, string]
    if (project !== this.project) return sendError(res, 404, 'notFound', `The resource 'projects/${project}' was not found`)
    let p: RegExpExecArray | null
    if (method === 'GET' && (p = /^global\/networks\/([^/]+)$/.exec(rest))) {
      const name = p[1]!
      if (!this.networks.has(name)) return notFound(res, `projects/${project}/global/networks/${name}`)
      return sendJson(res, 200, { kind: 'compute#network', name, id: '4242', selfLink: this.networkLink(name), autoCreateSubnetworks: true })
    }
    if (method === 'GET' && (p = /^zones\/([^/]+)\/instances\/([^/]+)$/.exec(rest))) {
      const [zone, name] = [p[1]!, p[2]!]
      if (!this.instances.has(`${zone}/${name}`)) return notFound(res, `projects/${project}/zones/${zone}/instances/${name}`)
      return sendJson(res, 200, { kind: 'compute#instance', name, id: '777', zone: `${LINK}/projects/${project}/zones/${zone}`, status: 'RUNNING', selfLink: this.instanceLink(name, zone), canIpForward: true })
    }
    if (method === 'GET' && (p = /^global\/routes\/([^/]+)$/.exec(rest))) {
      const route = this.routes.get(p[1]!)
      if (!route) return notFound(res, `projects/${project}/global/routes/${p[1]}`)
      return sendJson(res, 200, { kind: 'compute#route', ...route })
    }
    if (method === 'GET' && rest === 'global/routes') return this.listRoutes(url, res)
    if (method === 'POST' && rest === 'global/routes') return this.insertRoute(body, res)
    if (method === 'DELETE' && (p = /^global\/routes\/([^/]+)$/.exec(rest))) {
      const name = p[1]!
      if (!this.routes.has(name)) return notFound(res, `projects/${project}/global/routes/${name}`)
      return sendJson(res, 200, this.startOperation('delete', name, () => { this.routes.delete(name); return undefined }))
    }
    if (method === 'GET' && (p = /^global\/operations\/([^/]+)$/.exec(rest))) {
      const op = this.operations.get(p[1]!)
      if (!op) return notFound(res, `projects/${project}/global/operations/${p[1]}`)
      this.advance(op)
      return sendJson(res, 200, this.operationJson(op))
    }
    sendError(res, 404, 'notFound', `The requested URL ${path} was not found on this server.`)
  }

  private listRoutes(url: URL, res: ServerResponse): void {
    const all = [...this.routes.values()]
    const max = Math.min(Number(url.searchParams.get('maxResults') ?? 500) || 500, 500)
    const start = Number(url.searchParams.get('pageToken') ?? 0)
    const items = all.slice(start, start + max).map((r) => ({ kind: 'compute#route', ...r }))
    const next = start + max < all.length ? { nextPageToken: String(start + max) } : {}
    sendJson(res, 200, { kind: 'compute#routeList', id: `projects/${this.project}/global/routes`, items, ...next, selfLink: `${LINK}/projects/${this.project}/global/routes` })
  }

  private insertRoute(body: unknown, res: ServerResponse): void {
    const r = (body ?? {}) as Record<string, unknown>
    for (const field of ['name', 'destRange', 'network']) {
      if (typeof r[field] !== 'string' || r[field] === '') return sendError(res, 400, 'required', `Required field 'resource.${field}' not specified`)
    }
    const name = r['name'] as string
    if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) return sendError(res, 400, 'invalid', `Invalid value for field 'resource.name': '${name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`)
    if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(r['destRange'] as string)) return sendError(res, 400, 'invalid', `Invalid value for field 'resource.destRange': '${String(r['destRange'])}'. Must be a valid CIDR`)
    const networkName = String(r['network']).split('/').pop() ?? ''
    if (!this.networks.has(networkName)) return notFound(res, `projects/${this.project}/global/networks/${networkName}`)
    const hop = r['nextHopInstance']
    if (typeof hop !== 'string' || hop === '') return sendError(res, 400, 'invalid', "Invalid value for field 'resource': exactly one next hop must be specified")
    const hm = /zones\/([^/]+)\/instances\/([^/]+)$/.exec(hop)
    if (!hm || !this.instances.has(`${hm[1]}/${hm[2]}`)) return notFound(res, `projects/${this.project}/zones/${hm?.[1] ?? '?'}/instances/${hm?.[2] ?? hop}`)
    if (this.routes.has(name)) return sendError(res, 409, 'alreadyExists', `The resource 'projects/${this.project}/global/routes/${name}' already exists`)
    if (this.routes.size >= this.routeQuota) return sendError(res, 403, 'quotaExceeded', `Quota 'ROUTES' exceeded.  Limit: ${this.routeQuota}.0 globally.`)
    const record = { name, destRange: r['destRange'] as string, network: this.networkLink(networkName), nextHopInstance: this.instanceLink(hm[2]!, hm[1]!), priority: typeof r['priority'] === 'number' ? r['priority'] : 1000 }
    sendJson(res, 200, this.startOperation('insert', name, () => {
      if (this.routes.has(name)) return { code: 'RESOURCE_ALREADY_EXISTS', message: `The resource 'projects/${this.project}/global/routes/${name}' already exists` }
      this.putRoute(record)
      return undefined
    }))
  }

  private startOperation(type: string, route: string, apply: OperationRecord['apply']): unknown {
    const name = `operation-${Date.now()}-${(this.seq++).toString(16)}`
    const op = { name, status: 'PENDING' as const, operationType: type, targetLink: `${LINK}/projects/${this.project}/global/routes/${route}`, apply, polls: 0 }
    this.operations.set(name, op)
    return this.operationJson(op)
  }

  private advance(op: OperationRecord & { polls: number }): void {
    if (op.status === 'DONE') return
    op.polls++
    if (op.polls < this.pollsPerStage) return
    op.polls = 0
    if (op.status === 'PENDING') { op.status = 'RUNNING'; return }
    op.status = 'DONE'
    const error = op.apply()
    if (error) op.error = error
  }

  private operationJson(op: OperationRecord): unknown {
    return {
      kind: 'compute#operation', id: String(op.name.length * 7919), name: op.name, operationType: op.operationType,
      targetLink: op.targetLink, status: op.status, progress: op.status === 'DONE' ? 100 : 0,
      insertTime: new Date().toISOString(), selfLink: `${LINK}/projects/${this.project}/global/operations/${op.name}`,
      ...(op.error ? { error: { errors: [op.error] }, httpErrorStatusCode: 409, httpErrorMessage: 'CONFLICT' } : {}),
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { data += c })
    req.on('end', () => resolve(data))
    req.on('error', reject)
  })
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' }).end(JSON.stringify(body))
}

const STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'ALREADY_EXISTS', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' }

/** Google's JSON error envelope: `{"error":{"code","message","errors":[{"reason",...}]}}`. */
function sendError(res: ServerResponse, code: number, reason: string, message: string, status?: string): void {
  sendJson(res, code, { error: { code, message, errors: [{ message, domain: code === 429 || reason.includes('ateLimit') ? 'usageLimits' : 'global', reason }], ...(status ?? STATUS[code] ? { status: status ?? STATUS[code] } : {}) } })
}

function notFound(res: ServerResponse, resource: string): void {
  sendError(res, 404, 'notFound', `The resource '${resource}' was not found`)
}
