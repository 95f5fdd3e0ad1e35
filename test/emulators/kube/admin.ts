/**
 * The control API of the emulator for tests: the same `KubeAdmin` methods in-process and, for an
 * emulator running in another network namespace, as JSON-over-HTTP on a unix socket (a path-based
 * socket is reachable across network namespaces). Admin writes skip authentication and RBAC but go
 * through the same validation, resourceVersions and watch events as API writes.
 */
import { createServer, request, type Server } from 'node:http'
import { rmSync } from 'node:fs'
import type { FaultSpec, KubeEmulator } from './kube-emulator.ts'
import { NODES, PODS } from './resources.ts'
import type { IpamConfig } from './node-ipam.ts'
import type { JsonMap } from './strategic-merge.ts'
import { ApiError, type StatusBody } from './status.ts'

export interface NodeInit {
  name: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  podCIDR?: string
  podCIDRs?: string[]
  /** status.addresses, e.g. [{ type: 'InternalIP', address: '10.0.0.1' }] */
  addresses?: Array<{ type: string; address: string }>
  conditions?: Array<Record<string, string>>
  /** Extra fields merged over the built object (spec, status, metadata ...). */
  extra?: JsonMap
}

export type PatchKind = 'strategic' | 'merge' | 'json'

export interface KubeAdmin {
  createNode(node: NodeInit): Promise<JsonMap>
  /** Many nodes in one call (benchmarks: 5,000 nodes). */
  createNodes(nodes: NodeInit[]): Promise<number>
  patchNode(name: string, patch: unknown, opts?: { type?: PatchKind; subresource?: 'status' }): Promise<JsonMap>
  deleteNode(name: string): Promise<void>
  /** Sets spec.podCIDR/podCIDRs (what the node IPAM would do; refused once set, as the real API does). */
  setPodCidr(name: string, cidrs: string | string[]): Promise<JsonMap>
  getNode(name: string): Promise<JsonMap | undefined>
  listNodes(): Promise<JsonMap[]>
  createPod(namespace: string, name: string, nodeName: string): Promise<JsonMap>
  deletePod(namespace: string, name: string): Promise<void>
  /** Revokes the user's token (default the flannel service account) and returns the new one. */
  rotateToken(user?: string): Promise<string>
  tokens(): Promise<Record<string, string>>
  /** 'down': stop listening and drop connections; 'hang': accept and never answer. */
  down(mode?: 'down' | 'hang'): Promise<void>
  up(): Promise<void>
  failNext(fault: FaultSpec): Promise<void>
  /** Forgets history: watches and exact lists from older resourceVersions get 410. Returns the revision. */
  compact(): Promise<number>
  /** Ends every open watch stream (as at an API server restart). Returns how many. */
  closeWatches(): Promise<number>
  watchCount(): Promise<number>
  /** Requests by "verb resource[/subresource]", e.g. { "list nodes": 1, "watch nodes": 2, "patch nodes/status": 3 }. */
  requestCounts(): Promise<Record<string, number>>
  resetRequestCounts(): Promise<void>
  resourceVersion(): Promise<number>
  /** Turns the node IPAM on (with its config) or off (undefined). */
  setIpam(cfg: IpamConfig | undefined): Promise<void>
}

export const FLANNEL = 'system:serviceaccount:kube-flannel:flannel'

function nodeObject(n: NodeInit): JsonMap {
  const spec: JsonMap = {}
  if (n.podCIDR) spec.podCIDR = n.podCIDR
  if (n.podCIDRs) spec.podCIDRs = n.podCIDRs
  const status: JsonMap = {}
  if (n.conditions) status.conditions = n.conditions
  if (n.addresses) status.addresses = n.addresses
  const metadata: JsonMap = { name: n.name }
  if (n.labels) metadata.labels = n.labels
  if (n.annotations) metadata.annotations = n.annotations
  const extra = n.extra ?? {}
  return {
    ...extra,
    metadata: { ...metadata, ...((extra.metadata as JsonMap | undefined) ?? {}) },
    spec: { ...spec, ...((extra.spec as JsonMap | undefined) ?? {}) },
    status: { ...status, ...((extra.status as JsonMap | undefined) ?? {}) },
  }
}

const CONTENT_TYPES: Record<PatchKind, string> = {
  strategic: 'application/strategic-merge-patch+json',
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
}

export function localAdmin(emu: KubeEmulator): KubeAdmin {
  const api = emu.api
  return {
    async createNode(n) { return api.create(NODES, undefined, nodeObject(n)).object.obj },
    async createNodes(ns) { for (const n of ns) api.create(NODES, undefined, nodeObject(n)); return ns.length },
    async patchNode(name, patch, opts = {}) {
      return api.patch(NODES, undefined, name, CONTENT_TYPES[opts.type ?? 'strategic'], JSON.stringify(patch), opts.subresource).object.obj
    },
    async deleteNode(name) { api.delete(NODES, undefined, name, undefined) },
    async setPodCidr(name, cidrs) {
      const list = Array.isArray(cidrs) ? cidrs : [cidrs]
      return api.patch(NODES, undefined, name, CONTENT_TYPES.merge, JSON.stringify({ spec: { podCIDR: list[0], podCIDRs: list } })).object.obj
    },
    async getNode(name) { return emu.store.get('nodes', name)?.obj },
    async listNodes() { return emu.store.keys('nodes').map((k) => emu.store.get('nodes', k)!.obj) },
    async createPod(namespace, name, nodeName) {
      const pod = { metadata: { name, namespace }, spec: { nodeName, containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9' }] } }
      return api.create(PODS, namespace, pod).object.obj
    },
    async deletePod(namespace, name) { api.delete(PODS, namespace, name, undefined) },
    async rotateToken(user = FLANNEL) { return emu.auth.rotate(user) },
    async tokens() { return emu.auth.tokens() },
    down: (mode) => emu.down(mode),
    up: () => emu.up(),
    async failNext(f) { emu.failNext(f) },
    async compact() { return emu.store.compact() },
    async closeWatches() { return api.closeWatches() },
    async watchCount() { return api.watchers.size },
    async requestCounts() { return emu.requestCounts() },
    async resetRequestCounts() { emu.resetRequestCounts() },
    async resourceVersion() { return emu.store.currentRevision },
    async setIpam(cfg) { emu.ipam.configure(cfg) },
  }
}

const METHODS: ReadonlyArray<keyof KubeAdmin> = [
  'createNode', 'createNodes', 'patchNode', 'deleteNode', 'setPodCidr', 'getNode', 'listNodes', 'createPod', 'deletePod', 'rotateToken', 'tokens',
  'down', 'up', 'failNext', 'compact', 'closeWatches', 'watchCount', 'requestCounts', 'resetRequestCounts', 'resourceVersion', 'setIpam',
]

/** Serves `admin` as POST /<method> with a JSON array of arguments; errors carry the API Status. */
export async function serveAdmin(admin: KubeAdmin, socketPath: string): Promise<Server> {
  rmSync(socketPath, { force: true })
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const method = (req.url ?? '').slice(1) as keyof KubeAdmin
      const reply = (code: number, body: unknown): void => { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body ?? null)) }
      if (!METHODS.includes(method)) return reply(404, { error: `no admin method ${method}` })
      const args = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[]) : []
      ;(admin[method] as (...a: unknown[]) => Promise<unknown>)(...args)
        .then((r) => reply(200, { result: r ?? null }))
        .catch((err: unknown) => reply(500, err instanceof ApiError ? { status: err.body } : { error: (err as Error).message }))
    })
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  return server
}

/** Admin methods throw ApiError (with .code and .body, the Status) for refused writes, in both modes. */
export function remoteAdmin(socketPath: string): KubeAdmin {
  const call = (method: string, args: unknown[]): Promise<unknown> => new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `/${method}`, method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { result?: unknown; error?: string; status?: StatusBody }
        if (res.statusCode === 200) resolve(body.result === null ? undefined : body.result)
        // An API error comes back as the same ApiError an in-process call throws.
        else reject(body.status ? new ApiError(body.status) : new Error(body.error ?? `admin ${method} failed`))
      })
    })
    req.on('error', reject)
    req.end(JSON.stringify(args.filter((a, i) => a !== undefined || i < args.length - 1)))
  })
  return Object.fromEntries(METHODS.map((m) => [m, (...args: unknown[]) => call(m, args)])) as unknown as KubeAdmin
}
