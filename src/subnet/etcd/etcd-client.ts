/**
 * Minimal client for etcd's v3 JSON gateway (grpc-gateway, `/v3/...`) over HTTP/1.1, with
 * endpoint failover, a per-request timeout, TLS and username/password tokens. Chosen over
 * the grpc `etcd3` package for its load cost (64 MB RSS, 210 ms) and its crash on watch
 * cancel after compaction. int64 fields travel as strings, keys and values as base64.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http'
import type { Agent as HttpsAgent } from 'node:https'
import { WeftError } from '../../errors.ts'
import type { Logger } from '../../log/logger.ts'
import type { StoreRecorder } from '../../metrics/recorder.ts'

export interface EtcdTlsOptions {
  /** PEM contents, not paths. Client certificates are used only when both key and cert are set. */
  readonly key?: string | Buffer
  readonly cert?: string | Buffer
  readonly ca?: string | Buffer
}

export interface EtcdClientOptions {
  /** e.g. ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'] */
  readonly endpoints: readonly string[]
  /** Per-request timeout (default 5 s); for watches it bounds only the connection setup. */
  readonly timeoutMs?: number
  /**
   * A watch that receives nothing for this long is treated as dead and reopened (default
   * 15 min: etcd sends a progress notification every 10 min to watches that ask for one).
   */
  readonly watchIdleMs?: number
  readonly tls?: EtcdTlsOptions
  readonly username?: string
  readonly password?: string
  readonly logger: Logger
  /** Counts requests and their duration (weft_store_*); absent when metrics are off. */
  readonly metrics?: StoreRecorder
}

/** An error answer from etcd: gRPC status code and message. */
export class EtcdApiError extends WeftError {
  constructor(readonly grpcCode: number, message: string, readonly httpStatus: number) {
    super(grpcCode === 11 || /compacted/.test(message) ? 'REGISTRY_COMPACTED' : 'REGISTRY_UNAVAILABLE', `etcd: ${message}`, {
      details: { grpcCode, httpStatus },
    })
    this.name = 'EtcdApiError'
  }
}

// gRPC codes worth trying another member for: Unavailable, DeadlineExceeded, and leader loss.
const RETRY_ELSEWHERE = new Set([4, 14])
const UNAUTHENTICATED = 16

export class EtcdClient {
  private readonly endpoints: readonly URL[]
  private readonly timeoutMs: number
  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 16 })
  /** Made on first use: node:https and tls cost ~2 ms to load, and most clusters speak plain HTTP. */
  private httpsAgentValue: HttpsAgent | undefined
  private readonly httpsAgentOptions: ConstructorParameters<typeof HttpsAgent>[0]
  /** Simple tokens are per member: one per endpoint. */
  private readonly tokens = new Map<string, string>()
  private current = 0
  private closed = false

  constructor(private readonly options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new WeftError('USAGE', 'etcd-endpoints: at least one endpoint is required')
    this.endpoints = options.endpoints.map((e) => {
      let url: URL
      try {
        url = new URL(e)
      } catch {
        throw new WeftError('USAGE', `etcd-endpoints: not a URL: "${e}"`)
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new WeftError('USAGE', `etcd-endpoints: scheme must be http or https: "${e}"`)
      return url
    })
    this.timeoutMs = options.timeoutMs ?? 5000
    const tls = options.tls ?? {}
    const withClientCert = tls.key !== undefined && tls.cert !== undefined
    if ((tls.key === undefined) !== (tls.cert === undefined)) {
      options.logger.warn('etcd TLS needs both a key and a certificate; client certificate not used')
    }
    this.httpsAgentOptions = {
      keepAlive: true, maxSockets: 16, minVersion: 'TLSv1.2',
      ...(withClientCert ? { key: tls.key, cert: tls.cert } : {}),
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    }
  }

  private get httpsAgent(): HttpsAgent {
    this.httpsAgentValue ??= new (httpsModule().Agent)(this.httpsAgentOptions)
    return this.httpsAgentValue
  }

  /** POSTs a JSON body and returns the parsed answer, failing over between endpoints. */
  async call<T>(path: string, body: unknown, signal: AbortSignal): Promise<T> {
    const res = await this.withFailover(path, body, signal, false)
    return res.json as T
  }

  /** Opens a streaming POST (watch) and yields each newline-delimited JSON message. */
  async *stream(path: string, body: unknown, signal: AbortSignal): AsyncGenerator<unknown> {
    const { res, req } = await this.withFailover(path, body, signal, true)
    // A silently vanished peer (no FIN, no RST) must not stall the watch forever.
    req.socket?.setKeepAlive(true, 30_000)
    const idleMs = this.options.watchIdleMs ?? 15 * 60_000
    const arm = (): NodeJS.Timeout => setTimeout(() => req.destroy(new Error(`no data from etcd for ${idleMs} ms`)), idleMs).unref()
    let idle = arm()
    // The consumer may abort while this generator is parked at a yield: release everything here.
    const onAbort = (): void => {
      clearTimeout(idle)
      req.destroy()
    }
    signal.addEventListener('abort', onAbort, { once: true })
    let buffered = ''
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        clearTimeout(idle)
        idle = arm()
        buffered += chunk.toString('utf8')
        let nl: number
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim()
          buffered = buffered.slice(nl + 1)
          if (line !== '') yield parseJson(line)
        }
      }
    } catch (err) {
      if (signal.aborted) return
      throw new WeftError('REGISTRY_UNAVAILABLE', 'etcd watch stream broke', { cause: err })
    } finally {
      clearTimeout(idle)
      signal.removeEventListener('abort', onAbort)
      req.destroy()
    }
  }

  close(): void {
    this.closed = true
    this.httpAgent.destroy()
    this.httpsAgentValue?.destroy()
  }

  private async withFailover(path: string, body: unknown, signal: AbortSignal, streaming: boolean): Promise<Sent> {
    const metrics = this.options.metrics
    if (!metrics) return this.failover(path, body, signal, streaming)
    const started = performance.now()
    const op = path.replace(/^\/v3\//, '').replace(/\//g, '_')
    try {
      const sent = await this.failover(path, body, signal, streaming)
      metrics.storeRequest('etcd', op, 'ok', (performance.now() - started) / 1000)
      return sent
    } catch (err) {
      if (!signal.aborted) metrics.storeRequest('etcd', op, 'error', (performance.now() - started) / 1000)
      throw err
    }
  }

  private async failover(path: string, body: unknown, signal: AbortSignal, streaming: boolean): Promise<Sent> {
    let lastErr: unknown
    const failures: string[] = []
    for (let i = 0; i < this.endpoints.length; i++) {
      if (this.closed) throw new WeftError('REGISTRY_UNAVAILABLE', 'etcd client is closed')
      const index = (this.current + i) % this.endpoints.length
      const endpoint = this.endpoints[index] as URL
      try {
        const sent = await this.authorized(endpoint, path, body, signal, streaming)
        this.current = index
        return sent
      } catch (err) {
        if (signal.aborted) throw signal.reason
        if (err instanceof EtcdApiError && !RETRY_ELSEWHERE.has(err.grpcCode)) throw err
        lastErr = err
        failures.push(`${endpoint.origin}: ${describe(err)}`)
        this.options.logger.debug('etcd endpoint failed', { endpoint: endpoint.origin, path }, err)
      }
    }
    throw new WeftError('REGISTRY_UNAVAILABLE', `no etcd endpoint answered ${path}: ${failures.join('; ')}`, {
      details: { endpoints: this.endpoints.map((e) => e.origin).join(',') }, cause: lastErr,
    })
  }

  private async authorized(endpoint: URL, path: string, body: unknown, signal: AbortSignal, streaming: boolean): Promise<Sent> {
    if (this.options.username === undefined) return this.send(endpoint, path, body, signal, streaming, undefined)
    for (let attempt = 0; ; attempt++) {
      let token = this.tokens.get(endpoint.origin)
      if (token === undefined) {
        const auth = await this.send(endpoint, '/v3/auth/authenticate', { name: this.options.username, password: this.options.password ?? '' }, signal, false, undefined)
        token = String((auth.json as { token?: string }).token ?? '')
        this.tokens.set(endpoint.origin, token)
      }
      try {
        return await this.send(endpoint, path, body, signal, streaming, token)
      } catch (err) {
        // Tokens expire (simple tokens after 5 min idle): authenticate again once.
        if (attempt === 0 && err instanceof EtcdApiError && (err.grpcCode === UNAUTHENTICATED || /auth token/.test(err.message))) {
          this.tokens.delete(endpoint.origin)
          continue
        }
        throw err
      }
    }
  }

  private send(endpoint: URL, path: string, body: unknown, signal: AbortSignal, streaming: boolean, token: string | undefined): Promise<Sent> {
    return new Promise<Sent>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      const https = endpoint.protocol === 'https:'
      const payload = JSON.stringify(body)
      const url = new URL(path, endpoint)
      const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
      if (token !== undefined) headers['authorization'] = token
      // flannel's WithRequireLeader: the gateway forwards this as gRPC metadata, so a member
      // cut off from the leader cancels the watch (we then fail over) instead of going quiet.
      if (streaming) headers['grpc-metadata-hasleader'] = 'true'
      const opts = { method: 'POST', headers, agent: streaming ? false as const : https ? this.httpsAgent : this.httpAgent }
      // A watch gets its own socket (agent false), so it needs the TLS settings itself.
      const tlsOpts = streaming && https ? tlsFromOptions(this.httpsAgentOptions) : {}
      let settled = false
      const fail = (err: unknown): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        req.destroy()
        reject(err)
      }
      const onAbort = (): void => fail(signal.reason)
      const timer = setTimeout(() => fail(new Error(`timeout after ${this.timeoutMs} ms`)), this.timeoutMs)
      const req: ClientRequest = (https ? httpsModule().request : httpRequest)(url, { ...opts, ...tlsOpts }, (res) => {
        if (streaming && res.statusCode === 200) {
          settled = true
          clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
          resolve({ res, req, json: undefined })
          return
        }
        readAll(res).then((text) => {
          if (settled) return
          const json = text === '' ? {} : safeJson(text)
          if (res.statusCode !== 200) {
            // Unary errors are {code, message}; streaming ones {error: {grpc_code, message}}.
            const top = json as { code?: number; message?: string; error?: string | { grpc_code?: number; message?: string } }
            const e = typeof top.error === 'object' && top.error !== null ? { code: top.error.grpc_code, message: top.error.message } : top
            const message = e.message ?? (typeof top.error === 'string' ? top.error : undefined) ?? `HTTP ${res.statusCode}`
            return fail(new EtcdApiError(Number(e.code ?? 2), String(message), res.statusCode ?? 0))
          }
          settled = true
          clearTimeout(timer)
          signal.removeEventListener('abort', onAbort)
          resolve({ res, req, json })
        }, fail)
      })
      req.on('error', fail)
      signal.addEventListener('abort', onAbort, { once: true })
      req.end(payload)
    })
  }
}

interface Sent {
  readonly res: IncomingMessage
  readonly req: ClientRequest
  readonly json: unknown
}

function tlsFromOptions(o: ConstructorParameters<typeof HttpsAgent>[0]): Record<string, unknown> {
  return { key: o?.key, cert: o?.cert, ca: o?.ca, minVersion: o?.minVersion }
}

function httpsModule(): typeof import('node:https') {
  return process.getBuiltinModule('node:https')
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    res.on('data', (c: Buffer) => chunks.push(c))
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    res.on('error', reject)
  })
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return { message: text.slice(0, 200) }
  }
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch (err) {
    throw new WeftError('REGISTRY_UNAVAILABLE', 'etcd sent a malformed watch message', { cause: err })
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
