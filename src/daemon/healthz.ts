/**
 * flanneld's health endpoints, byte for byte, so existing probes and scripts keep working:
 * GET /healthz → 200 always; GET /readyz → 503 until subnet.env is written, then 200.
 */
import { createServer, type Server } from 'node:http'
import { WeftError } from '../errors.ts'

export interface HealthServer {
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
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const reply = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(body)
    }
    if (path === '/healthz') return reply(200, 'flanneld is running')
    if (path === '/readyz') return ready ? reply(200, 'flanneld is ready') : reply(503, waitingFor ? `flanneld is not ready yet: ${waitingFor}` : 'flanneld is not ready yet')
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
