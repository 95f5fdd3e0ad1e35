/**
 * Metrics on: the registry, the listener for --metrics-addr, and the /metrics route for the
 * healthz port. Loaded by weftd only when --metrics-addr is set (a dynamic import), so a daemon
 * without metrics never runs this code.
 */
import { createServer, type Server } from 'node:http'
import { WeftError } from '../errors.ts'
import { CONTENT_TYPE } from './exposition.ts'
import { WeftMetrics, type BuildInfo } from './weft-metrics.ts'
import { instrumentKernel } from './kernel-metrics.ts'

export { instrumentKernel, WeftMetrics }

export interface MetricsEndpoint {
  readonly metrics: WeftMetrics
  /** Actual port (port 0 in tests). */
  readonly port: number
  /** For the healthz server's /metrics. */
  scrape(): { status: number; contentType: string; body: string }
  close(): Promise<void>
}

export async function startMetrics(addr: { host: string; port: number }, info: BuildInfo): Promise<MetricsEndpoint> {
  const metrics = new WeftMetrics(info)
  const scrape = (): { status: number; contentType: string; body: string } => ({ status: 200, contentType: CONTENT_TYPE, body: metrics.render() })
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
      return void res.end('method not allowed\n')
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      return void res.end('404 page not found: metrics are at /metrics\n')
    }
    const answer = scrape()
    res.writeHead(answer.status, { 'content-type': answer.contentType })
    res.end(req.method === 'HEAD' ? undefined : answer.body)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new WeftError('USAGE', `cannot listen on ${addr.host}:${addr.port} for --metrics-addr: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })),
    )
    server.listen(addr.port, addr.host, () => resolve())
  })
  const address = server.address()
  return {
    metrics,
    port: typeof address === 'object' && address ? address.port : addr.port,
    scrape,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
