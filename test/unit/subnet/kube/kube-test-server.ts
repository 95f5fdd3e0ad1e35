/** Small loopback servers for the kube client tests (127.0.0.1, port 0), and helpers. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer, type ServerOptions } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { KubeClientConfig } from '../../../../src/subnet/kube/kube-client-config.ts'

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

export interface TestServer {
  readonly url: string
  /** Requests seen, in order: method, url and headers. */
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[]
  /** Connections accepted so far. */
  connections: number
  close(): Promise<void>
}

export async function startServer(handler: Handler, tls?: ServerOptions): Promise<TestServer> {
  const sockets = new Set<Socket>()
  const state: TestServer = {
    url: '', requests: [], connections: 0,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    }),
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8')
      state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      handler(req, res, body)
    })
  }
  const server: Server = tls === undefined ? createServer(onRequest) : createTlsServer(tls, onRequest)
  server.on(tls === undefined ? 'connection' : 'secureConnection', (s: Socket) => {
    state.connections++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  ;(state as { url: string }).url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`
  return state
}

export function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(value))
}

export function status(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }
}

/** A whole Node as the API server sends it: weft keeps only a few of these fields. */
export function fullNode(name: string, resourceVersion = '1', annotations: Record<string, string> = {}): unknown {
  return {
    kind: 'Node', apiVersion: 'v1',
    metadata: {
      name, uid: `uid-${name}`, resourceVersion, creationTimestamp: '2024-01-01T00:00:00Z',
      labels: { 'kubernetes.io/hostname': name }, annotations,
      managedFields: [{ manager: 'kubelet', operation: 'Update', fieldsV1: { 'f:status': {} } }],
    },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'], providerID: 'x' },
    status: {
      capacity: { cpu: '4', memory: '8Gi' },
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok', lastHeartbeatTime: '2024-01-01T00:00:00Z', lastTransitionTime: '2024-01-01T00:00:00Z' }],
      addresses: [{ type: 'InternalIP', address: '192.168.1.10' }],
      images: [{ names: ['registry/image:1'], sizeBytes: 1000 }],
      nodeInfo: { kubeletVersion: 'v1.30.0' },
    },
  }
}

export function plainConfig(server: string, over: Partial<KubeClientConfig> = {}): KubeClientConfig {
  return { server, tls: { insecureSkipTLSVerify: false }, auth: { kind: 'none' }, source: 'test', warnings: [], ...over }
}

export const never = new AbortController().signal
