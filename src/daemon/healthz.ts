/**
 * flanneld's health endpoints, byte for byte, so existing probes and scripts keep working:
 * GET /healthz → 200 always; GET /readyz → 503 until subnet.env is written, then 200.
 */
import { createServer, type Server } from 'node:http'
import { WeftError } from '../errors.ts'

/** An extra GET path (/metrics, /status): status, content type and body, made per request. */
export type HealthRoute = () => { readonly status: number; readonly contentType: string; readonly body: string }

export interface HealthServer {
  /** Serves `path` too (the health endpoints' own paths cannot be replaced). */
  route(path: string, handler: HealthRoute): void
  /** Marks the daemon ready (subnet.env written). */
  setReady(): void
  /** What keeps the daemon from being ready (a node without a podCIDR), shown after flannel's 503 text. */
  setWaitingFor(reason: string | undefined): void
  /** Actual port (useful with port 0 in tests). */
  readonly port: number
  close(): Promise<void>
}

export async function startHealthServer(host: string, port: number): Promise<HealthServer> {
  let ready = false
  let waitingFor: string | undefined
  const routes = new Map<string, HealthRoute>()
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(body)
    }
    if (path === '/healthz') return reply(200, 'flanneld is running')
    if (path === '/readyz') return ready ? reply(200, 'flanneld is ready') : reply(503, waitingFor ? `flanneld is not ready yet: ${waitingFor}` : 'flanneld is not ready yet')
    const route = routes.get(path ?? '')
    if (route) {
      const answer = route()
      res.writeHead(answer.status, { 'content-type': answer.contentType })
      return void res.end(answer.body)
    }
    reply(404, '404 page not found\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new WeftError('USAGE', `cannot listen on ${host}:${port} for --healthz-port: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })),
    )
    server.listen(port, host, () => resolve())
  })
  const address = server.address()
  return {
    route: (path, handler) => { routes.set(path, handler) },
    setReady: () => { ready = true },
    setWaitingFor: (reason) => { waitingFor = reason },
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        // flannel gives in-flight requests 3 s; probes are tiny, so close idle sockets at once.
        const timer = setTimeout(() => server.closeAllConnections(), 3000)
        server.close(() => { clearTimeout(timer); resolve() })
        server.closeIdleConnections()
      }),
  }
}
