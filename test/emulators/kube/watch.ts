/**
 * Watch streams as the API server's watch cache serves them: one JSON object per event, each
 * followed by "\n", on a chunked 200 response. Events are rendered once and shared by every
 * watcher; a watcher that cannot keep up is dropped (its stream ends) instead of holding others
 * back, as the cacher does with an unresponsive watcher.
 */
import type { ServerResponse } from 'node:http'
import type { StoreEvent, StoredObject } from './object-store.ts'
import type { StatusBody } from './status.ts'

export interface WatchFilter {
  readonly resource: string
  /** Namespace of a namespaced watch, undefined for all. */
  readonly namespace: string | undefined
  matches(obj: StoredObject): boolean
}

export interface WatchOptions {
  readonly allowBookmarks: boolean
  readonly timeoutMs: number
  readonly bookmarkIntervalMs: number
  /** Events queued for a slow reader before the watcher is dropped. */
  readonly maxQueued: number
  readonly bookmarkKind: { kind: string; apiVersion: string }
  readonly currentRevision: () => number
}

const line = (type: string, objectJson: string): string => `{"type":"${type}","object":${objectJson}}\n`

export class Watcher {
  private queue: string[] = []
  private blocked = false
  private closed = false
  private readonly timers: NodeJS.Timeout[] = []
  private bookmarkTimer: NodeJS.Timeout | undefined
  private readonly deadline: number
  onClose: (() => void) | undefined

  constructor(private readonly res: ServerResponse, readonly filter: WatchFilter, private readonly opts: WatchOptions) {
    this.deadline = Date.now() + opts.timeoutMs
    // HTTP/2 has no Transfer-Encoding (its frames delimit the body); HTTP/1.1 streams chunked.
    const h2 = 'stream' in res
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', ...(h2 ? {} : { 'Transfer-Encoding': 'chunked' }) })
    res.flushHeaders?.()
    res.on('drain', () => this.flush())
    res.on('close', () => this.close())
    this.timers.push(setTimeout(() => this.close(), opts.timeoutMs))
    if (opts.allowBookmarks) this.scheduleBookmark()
  }

  get isClosed(): boolean { return this.closed }

  /** Sends a live or initial event, converting it as the cacher does for the watcher's selector. */
  deliver(ev: StoreEvent): void {
    if (this.closed || ev.resource !== this.filter.resource) return
    const inNs = (o: StoredObject): boolean => this.filter.namespace === undefined || o.key.startsWith(`${this.filter.namespace}/`)
    if (!inNs(ev.object)) return
    const cur = ev.type !== 'DELETED' && this.filter.matches(ev.object)
    const old = ev.prev !== undefined && this.filter.matches(ev.prev)
    if (cur && !old) this.send(line('ADDED', ev.object.json))
    else if (cur && old) this.send(line('MODIFIED', ev.object.json))
    // Leaving the selector (or deleted): DELETED with the last matching state at the event's revision.
    else if (!cur && old) this.send(line('DELETED', ev.type === 'DELETED' ? ev.object.json : ev.prev!.withRv(ev.rv).json))
  }

  /** A synthetic ADDED for the initial state (resourceVersion unset or 0). */
  added(obj: StoredObject): void {
    if (this.filter.matches(obj)) this.send(line('ADDED', obj.json))
  }

  bookmark(rv: number, initialEventsEnd = false): void {
    const metadata = initialEventsEnd
      ? { resourceVersion: String(rv), annotations: { 'k8s.io/initial-events-end': 'true' } }
      : { resourceVersion: String(rv) }
    this.send(line('BOOKMARK', JSON.stringify({ ...this.opts.bookmarkKind, metadata })))
  }

  /** An ERROR event (too old resourceVersion) and the end of the stream. */
  error(status: StatusBody): void {
    this.send(line('ERROR', JSON.stringify(status)))
    this.close()
  }

  private scheduleBookmark(): void {
    // The cacher's nextBookmarkTime: every interval, and once 2 s before the deadline.
    const now = Date.now()
    let at = now + this.opts.bookmarkIntervalMs
    const beforeDeadline = this.deadline - 2000
    if (beforeDeadline > now && beforeDeadline < at) at = beforeDeadline
    this.bookmarkTimer = setTimeout(() => {
      if (this.closed) return
      this.bookmark(this.opts.currentRevision())
      this.scheduleBookmark()
    }, Math.max(0, at - now))
  }

  private send(chunk: string): void {
    if (this.closed) return
    if (this.blocked) {
      this.queue.push(chunk)
      if (this.queue.length > this.opts.maxQueued) this.close()
      return
    }
    if (!this.res.write(chunk)) this.blocked = true
  }

  private flush(): void {
    this.blocked = false
    while (this.queue.length > 0 && !this.blocked && !this.closed) {
      if (!this.res.write(this.queue.shift()!)) this.blocked = true
    }
  }

  /** Ends the stream the way the server does at its timeout: the chunked body simply ends. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    clearTimeout(this.bookmarkTimer)
    this.queue = []
    if (!this.res.writableEnded) this.res.end()
    this.onClose?.()
  }
}
