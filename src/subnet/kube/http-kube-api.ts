/**
 * KubeApi over node:http(s), JSON only. Chosen over @kubernetes/client-node, which adds 65 MB
 * RSS (1.4.0; 2.0.1 does not load on Node 20) to a daemon whose budget is 50 MiB. Answers are
 * decoded into the reduced shapes at once (kube-decode.ts). Gets, lists and patches share one
 * keep-alive agent; each watch holds its own connection, so a long watch never queues a patch.
 */
import { Agent as HttpAgent, STATUS_CODES, request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import type { Agent as HttpsAgent, RequestOptions as HttpsRequestOptions } from 'node:https'
import { isIP } from 'node:net'
import { VERSION } from '../../cli/version.ts'
import { WeftError, errorMessage } from '../../errors.ts'
import { KubeApiError, type KubeApi, type ListOptions, type WatchOptions } from './kube-api.ts'
import { resolveKubeClientConfig, type KubeClientConfig, type KubeClientInputs } from './kube-client-config.ts'
import { DecodeError, asStatus, decodeNode, decodeNodeList, decodePod } from './kube-decode.ts'
import type { StoreRecorder } from '../../metrics/recorder.ts'
import { tokenSource, type TokenSource } from './kube-token.ts'
import { PATCH_CONTENT_TYPE, type KubeNode, type KubePod, type KubeStatus, type NodeList, type NodeWatchEvent, type PatchType } from './kube-types.ts'
import { WatchErrorEvent, decodeNodeWatchEvent, jsonLines } from './kube-watch-stream.ts'

export interface HttpKubeApiOptions {
  /** Whole-exchange timeout of a get, list or patch (default 30 s); for a watch, the wait for its headers. */
  readonly requestTimeoutMs?: number
  /**
   * A watch that receives no byte for its timeoutSeconds (1 h when unset) plus this margin is
   * treated as dead, a half-open connection (default 30 s): the server would have ended it.
   */
  readonly watchIdleMarginMs?: number
  /** How often at most the token file is stat'ed (default 1 s). */
  readonly tokenRecheckMs?: number
  /** Counts requests and their duration (weft_store_*); absent when metrics are off. */
  readonly metrics?: StoreRecorder
}

const DEFAULT_WATCH_SECONDS = 3600
/** Guards against a runaway answer only: page lists with `limit` (500 nodes are ~3 MB). */
const MAX_BODY_BYTES = 256 * 1024 * 1024

/**
 * The daemon's entry: resolves the connection from the flags and environment (throws
 * ConfigError, code USAGE) and builds the client. Log `config.source` and `config.warnings`.
 */
export function createKubeApi(inputs: KubeClientInputs, options: HttpKubeApiOptions = {}): { api: HttpKubeApi; config: KubeClientConfig } {
  const config = resolveKubeClientConfig(inputs)
  return { api: new HttpKubeApi(config, options), config }
}

export class HttpKubeApi implements KubeApi {
  readonly server: string
  private readonly https: boolean
  private readonly hostname: string
  private readonly port: string
  private readonly prefix: string
  private readonly tlsOptions: TlsOptions
  private readonly tokens: TokenSource
  private readonly requestTimeoutMs: number
  private readonly watchIdleMarginMs: number
  private agentValue: HttpAgent | HttpsAgent | undefined
  private readonly watches = new Set<ClientRequest>()
  private closed = false
  private readonly metrics: StoreRecorder | undefined

  constructor(config: KubeClientConfig, options: HttpKubeApiOptions = {}) {
    const url = new URL(config.server)
    this.server = config.server
    this.https = url.protocol === 'https:'
    this.hostname = url.hostname.replace(/^\[(.*)\]$/, '$1')
    this.port = url.port
    this.prefix = url.pathname.replace(/\/+$/, '')
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000
    this.metrics = options.metrics
    this.watchIdleMarginMs = options.watchIdleMarginMs ?? 30_000
    this.tokens = tokenSource(config.auth, options.tokenRecheckMs ?? 1000)
    const tls = config.tls
    this.tlsOptions = {
      minVersion: 'TLSv1.2',
      rejectUnauthorized: !tls.insecureSkipTLSVerify,
      // SNI carries host names only (RFC 6066): none for an IP-address server, which is then
      // verified against the certificate's IP SANs. tls-server-name replaces both.
      servername: tls.serverName ?? (isIP(this.hostname) === 0 ? this.hostname : ''),
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
    }
  }

  async getNode(name: string, signal: AbortSignal): Promise<KubeNode> {
    return this.call('GET', `/api/v1/nodes/${encodeURIComponent(name)}`, `GET nodes/${name}`, signal, decodeNode)
  }

  async getPod(namespace: string, name: string, signal: AbortSignal): Promise<KubePod> {
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`
    return this.call('GET', path, `GET namespaces/${namespace}/pods/${name}`, signal, decodePod)
  }

  async listNodes(options: ListOptions, signal: AbortSignal): Promise<NodeList> {
    const query = new URLSearchParams()
    if (options.limit !== undefined) query.set('limit', String(options.limit))
    if (options.continue !== undefined && options.continue !== '') query.set('continue', options.continue)
    if (options.resourceVersion !== undefined) query.set('resourceVersion', options.resourceVersion)
    const q = query.size === 0 ? '' : `?${query}`
    return this.call('GET', `/api/v1/nodes${q}`, 'GET nodes', signal, decodeNodeList)
  }

  async patchNodeStatus(name: string, patch: unknown, type: PatchType, signal: AbortSignal): Promise<KubeNode> {
    const body = { text: JSON.stringify(patch), contentType: PATCH_CONTENT_TYPE[type] }
    return this.call('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}/status`, `PATCH nodes/${name}/status`, signal, decodeNode, body)
  }

  /** Ends cleanly when the server ends the stream, and also when `signal` aborts. */
  async *watchNodes(resourceVersion: string, options: WatchOptions, signal: AbortSignal): AsyncGenerator<NodeWatchEvent> {
    const query = new URLSearchParams({ watch: 'true' })
    if (resourceVersion !== '') query.set('resourceVersion', resourceVersion)
    if (options.allowWatchBookmarks ?? true) query.set('allowWatchBookmarks', 'true')
    if (options.timeoutSeconds !== undefined) query.set('timeoutSeconds', String(options.timeoutSeconds))
    if (options.fieldSelector !== undefined) query.set('fieldSelector', options.fieldSelector)
    const what = `WATCH nodes from ${resourceVersion === '' ? 'now' : resourceVersion}`
    let opened: Opened
    try {
      opened = await this.send('GET', `/api/v1/nodes?${query}`, what, signal, undefined, true)
    } catch (err) {
      if (signal.aborted) return
      throw err
    }
    const { req, res } = opened
    this.watches.add(req)
    // A peer that vanished without FIN or RST must not stall the watch forever.
    req.socket?.setKeepAlive(true, 30_000)
    const idleMs = (options.timeoutSeconds ?? DEFAULT_WATCH_SECONDS) * 1000 + this.watchIdleMarginMs
    // The response reports a destroyed request as "aborted": keep the reason for the message.
    let idleError: Error | undefined
    const idle = setTimeout(() => {
      idleError = new Error(`no data for ${idleMs} ms (half-open connection?)`)
      req.destroy(idleError)
    }, idleMs).unref()
    const onAbort = (): void => void req.destroy()
    signal.addEventListener('abort', onAbort, { once: true })
    async function* chunks(): AsyncGenerator<Buffer> {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        idle.refresh()
        yield chunk
      }
    }
    try {
      for await (const line of jsonLines(chunks())) {
        yield this.watchEvent(line, what)
      }
    } catch (err) {
      if (signal.aborted) return
      if (err instanceof WeftError) throw err
      if (err instanceof DecodeError) throw this.invalid(what, err)
      const cause = idleError ?? err
      throw new KubeApiError(0, idleError === undefined ? socketCode(err) : 'ETIMEDOUT', `${this.prefixFor(what)}: the watch stream broke: ${errorMessage(cause)}`, { cause })
    } finally {
      clearTimeout(idle)
      signal.removeEventListener('abort', onAbort)
      this.watches.delete(req)
      req.destroy()
    }
  }

  close(): void {
    this.closed = true
    for (const req of this.watches) req.destroy()
    this.watches.clear()
    this.agentValue?.destroy()
  }

  private watchEvent(line: string, what: string): NodeWatchEvent {
    try {
      return decodeNodeWatchEvent(line)
    } catch (err) {
      if (err instanceof WatchErrorEvent) {
        const status = err.status
        const code = status.code ?? 500
        throw new KubeApiError(code, status.reason ?? '', `${this.prefixFor(what)}: ERROR event: ${describeStatus(code, status)}`)
      }
      if (err instanceof DecodeError) throw this.invalid(what, err)
      throw err
    }
  }

  private async call<T>(method: string, path: string, what: string, signal: AbortSignal, decode: (v: unknown) => T, body?: Body): Promise<T> {
    const { text } = await this.send(method, path, what, signal, body, false)
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw new WeftError('INVALID_INPUT', `${this.prefixFor(what)}: the answer is not JSON: ${snippet(text)}`)
    }
    try {
      return decode(json)
    } catch (err) {
      if (err instanceof DecodeError) throw this.invalid(what, err)
      throw err
    }
  }

  /** One request, retried once after a 401 when the token file holds a new token. */
  private async send(method: string, path: string, what: string, signal: AbortSignal, body: Body | undefined, stream: boolean): Promise<Opened> {
    const metrics = this.metrics
    if (!metrics) return this.sendOnce(method, path, what, signal, body, stream)
    // A fixed set of operations: the node's name never becomes a label.
    const op = stream ? 'watch' : method === 'GET' ? (/^\/api\/v1\/nodes(\?|$)/.test(path) ? 'list' : 'get') : method.toLowerCase()
    const started = performance.now()
    try {
      const opened = await this.sendOnce(method, path, what, signal, body, stream)
      metrics.storeRequest('kube', op, 'ok', (performance.now() - started) / 1000)
      return opened
    } catch (err) {
      if (!signal.aborted) metrics.storeRequest('kube', op, 'error', (performance.now() - started) / 1000)
      throw err
    }
  }

  private async sendOnce(method: string, path: string, what: string, signal: AbortSignal, body: Body | undefined, stream: boolean): Promise<Opened> {
    for (let attempt = 0; ; attempt++) {
      const opened = await this.exchange(method, path, what, signal, body, stream)
      if (opened.status >= 200 && opened.status < 300) return opened
      if (opened.status === 401 && attempt === 0 && this.tokens.reload()) continue
      throw this.apiError(what, opened)
    }
  }

  private exchange(method: string, path: string, what: string, signal: AbortSignal, body: Body | undefined, stream: boolean): Promise<Opened> {
    return new Promise<Opened>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      if (this.closed) return reject(new KubeApiError(0, 'closed', `${this.prefixFor(what)}: the client is closed`))
      const headers: OutgoingHttpHeaders = { accept: 'application/json', 'user-agent': `weft/${VERSION}` }
      const authorization = this.tokens.header(Date.now())
      if (authorization !== undefined) headers['authorization'] = authorization
      if (body !== undefined) {
        headers['content-type'] = body.contentType
        headers['content-length'] = Buffer.byteLength(body.text)
      }
      const options: HttpsRequestOptions = {
        method, hostname: this.hostname, port: this.port, path: this.prefix + path, headers,
        // A watch gets its own socket (agent false), so it carries the TLS settings itself.
        ...(stream ? { agent: false, ...(this.https ? this.tlsOptions : {}) } : { agent: this.agent() }),
      }
      let settled = false
      const finish = (): void => {
        settled = true
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      }
      const fail = (err: unknown): void => {
        if (settled) return
        finish()
        req.destroy()
        reject(err)
      }
      const onAbort = (): void => fail(signal.reason)
      const timer = setTimeout(() => {
        fail(new KubeApiError(0, 'ETIMEDOUT', `${this.prefixFor(what)}: no answer within ${this.requestTimeoutMs} ms`))
      }, this.requestTimeoutMs).unref()
      const send = this.https ? httpsModule().request : httpRequest
      const req: ClientRequest = send(options, (res) => {
        const status = res.statusCode ?? 0
        if (stream && status >= 200 && status < 300) {
          finish()
          resolve({ status, res, req, text: '', retryAfter: undefined })
          return
        }
        const parts: Buffer[] = []
        let bytes = 0
        res.on('data', (c: Buffer) => {
          bytes += c.length
          if (bytes > MAX_BODY_BYTES) fail(new KubeApiError(0, 'EMSGSIZE', `${this.prefixFor(what)}: the answer is larger than ${MAX_BODY_BYTES} bytes`))
          else parts.push(c)
        })
        res.on('error', (err) => fail(this.connectionError(what, err)))
        res.on('end', () => {
          if (settled) return
          finish()
          resolve({ status, res, req, text: Buffer.concat(parts).toString('utf8'), retryAfter: retryAfterSeconds(res.headers['retry-after']) })
        })
      })
      req.on('error', (err) => fail(this.connectionError(what, err)))
      signal.addEventListener('abort', onAbort, { once: true })
      req.end(body?.text)
    })
  }

  private agent(): HttpAgent | HttpsAgent {
    // Two sockets at most: one kept alive carries the steady trickle of gets and patches; a
    // second lets a patch pass a long list. Node's Agent keys its pool by the TLS options.
    const pool = { keepAlive: true, maxSockets: 2, maxFreeSockets: 1 }
    this.agentValue ??= this.https ? new (httpsModule().Agent)({ ...pool, ...this.tlsOptions }) : new HttpAgent(pool)
    return this.agentValue
  }

  private apiError(what: string, answer: Opened): KubeApiError {
    let parsed: unknown
    try {
      parsed = JSON.parse(answer.text)
    } catch {
      parsed = undefined
    }
    const status = asStatus(parsed)
    const reason = status?.reason ?? STATUS_CODES[answer.status] ?? ''
    const detail = status !== undefined ? describeStatus(answer.status, status) : `${answer.status} ${STATUS_CODES[answer.status] ?? ''}${answer.text.trim() === '' ? '' : `: ${snippet(answer.text)}`}`
    return new KubeApiError(answer.status, reason, `${this.prefixFor(what)}: ${detail}`, answer.retryAfter === undefined ? {} : { retryAfterSeconds: answer.retryAfter })
  }

  private connectionError(what: string, err: Error): KubeApiError {
    return new KubeApiError(0, socketCode(err), `${this.prefixFor(what)}: ${errorMessage(err)}`, { cause: err })
  }

  private invalid(what: string, err: DecodeError): WeftError {
    return new WeftError('INVALID_INPUT', `${this.prefixFor(what)}: malformed answer: ${err.message}`, { details: { field: err.field } })
  }

  private prefixFor(what: string): string {
    return `kube API ${this.server}: ${what}`
  }
}

type TlsOptions = Pick<HttpsRequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername' | 'minVersion'>

interface Body {
  readonly text: string
  readonly contentType: string
}

interface Opened {
  readonly status: number
  readonly res: IncomingMessage
  readonly req: ClientRequest
  /** The whole body, except for a successful watch (streamed from res). */
  readonly text: string
  readonly retryAfter: number | undefined
}

/** "401 Unauthorized: Unauthorized", "410 Expired: too old resource version: 5 (9)". */
function describeStatus(code: number, status: KubeStatus): string {
  const reason = status.reason ?? STATUS_CODES[code] ?? ''
  return `${code} ${reason}${status.message === undefined || status.message === '' ? '' : `: ${status.message}`}`
}

/** Retry-After: delay-seconds or an HTTP date. */
function retryAfterSeconds(header: string | undefined): number | undefined {
  if (header === undefined) return undefined
  if (/^\s*\d+\s*$/.test(header)) return Number(header)
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000))
}

/** One line of an error body: tags of an HTML page stripped, whitespace folded, 200 chars at most. */
function snippet(text: string): string {
  const line = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()
  return line.length > 200 ? `${line.slice(0, 200)}...` : line
}

function socketCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'ECONNRESET'
}

/** node:https and tls cost ~2 ms to load: only an https server pays it (as the etcd client does). */
function httpsModule(): typeof import('node:https') {
  return process.getBuiltinModule('node:https')
}
