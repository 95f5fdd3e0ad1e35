/**
 * `weft dashboard`: polls every host's probe row (GET <health endpoint>/probes) once a second
 * and serves the cluster page; the page follows /events (server-sent events). Reads only weft's
 * own endpoints.
 */
import { createServer, type ServerResponse } from 'node:http'
import { WeftError } from '../errors.ts'
import { clusterView, type ClusterView, type Fetched } from './matrix.ts'
import type { ProbeRow } from './probe-row.ts'
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.ts'

export interface DashboardOptions {
  readonly host: string
  readonly port: number
  /** Health endpoints, e.g. http://10.0.0.1:8471. */
  readonly endpoints: readonly string[]
  readonly pollMs?: number
  readonly fetchTimeoutMs?: number
}

export interface Dashboard {
  readonly url: string
  view(): ClusterView
  close(): Promise<void>
}

export async function startDashboard(opts: DashboardOptions, outer: AbortSignal): Promise<Dashboard> {
  const stop = new AbortController()
  const signal = AbortSignal.any([outer, stop.signal])
  const pollMs = opts.pollMs ?? 1000
  let view: ClusterView = clusterView([], Date.now())
  const streams = new Set<ServerResponse>()
  const known = new Map<string, string>() // endpoint → host id of its last row

  const fetchRow = async (endpoint: string): Promise<Fetched> => {
    try {
      const res = await fetch(`${endpoint.replace(/\/$/, '')}/probes`, { signal: AbortSignal.timeout(opts.fetchTimeoutMs ?? 900) })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const row = await res.json() as ProbeRow
      known.set(endpoint, row.host)
      return { endpoint, row }
    } catch (err) {
      const host = known.get(endpoint)
      return { endpoint, error: (err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message, ...(host ? { host } : {}) }
    }
  }
  const poll = async (): Promise<void> => {
    while (!signal.aborted) {
      const started = Date.now()
      view = clusterView(await Promise.all(opts.endpoints.map(fetchRow)), Date.now())
      const event = `data: ${JSON.stringify(view)}\n\n`
      for (const s of streams) s.write(event)
      await new Promise((r) => setTimeout(r, Math.max(50, pollMs - (Date.now() - started))).unref())
    }
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const send = (type: string, body: string): void => { res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }); res.end(body) }
    if (path === '/') return send('text/html; charset=utf-8', PAGE_HTML)
    if (path === '/app.js') return send('text/javascript; charset=utf-8', PAGE_JS)
    if (path === '/app.css') return send('text/css; charset=utf-8', PAGE_CSS)
    if (path === '/state') return send('application/json', JSON.stringify(view))
    if (path === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
      res.write(`retry: 1000\ndata: ${JSON.stringify(view)}\n\n`)
      streams.add(res)
      req.on('close', () => streams.delete(res))
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new WeftError('USAGE', `cannot listen on ${opts.host}:${opts.port} for --listen: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })))
    server.listen(opts.port, opts.host, () => resolve())
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : opts.port
  void poll()
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}/`,
    view: () => view,
    close: () => new Promise<void>((resolve) => {
      stop.abort()
      for (const s of streams) s.end()
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
