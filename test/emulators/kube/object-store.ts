/**
 * Objects and their history, like etcd behind the API server: one global revision counter bumped
 * by every write (an object's metadata.resourceVersion is the revision of its last write), a
 * history of events kept since the last compaction (so a list at an older revision, a continue
 * token or a watch from an older resourceVersion can be served), and compaction that forgets it.
 */
import { randomUUID } from 'node:crypto'
import type { JsonMap } from './strategic-merge.ts'

/** One version of one object; JSON is rendered once and shared by every list and watcher. */
export class StoredObject {
  private fullJson: string | undefined
  constructor(readonly resource: string, readonly key: string, readonly rv: number, readonly obj: JsonMap) {}
  /** With kind/apiVersion (GET, watch events). */
  get json(): string { return (this.fullJson ??= JSON.stringify(this.obj)) }
  /** Without kind/apiVersion, as list items are sent (the list's typed items carry no TypeMeta). */
  get itemJson(): string {
    const full = this.json
    const prefix = `{"kind":${JSON.stringify(this.obj.kind)},"apiVersion":${JSON.stringify(this.obj.apiVersion)},`
    return full.startsWith(prefix) ? `{${full.slice(prefix.length)}` : full
  }
  /** The same content stamped with another revision (a DELETED event carries the delete's revision). */
  withRv(rv: number): StoredObject {
    const meta = { ...(this.obj.metadata as JsonMap), resourceVersion: String(rv) }
    return new StoredObject(this.resource, this.key, rv, { ...this.obj, metadata: meta })
  }
}

export interface StoreEvent {
  readonly rv: number
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'
  readonly resource: string
  readonly key: string
  /** The new state; for DELETED the last state, stamped with the delete's revision. */
  readonly object: StoredObject
  readonly prev: StoredObject | undefined
}

export const nowTimestamp = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')

export class ObjectStore {
  private revision: number
  /** Events with rv <= this are forgotten. */
  private compactedAt: number
  private readonly byResource = new Map<string, Map<string, StoredObject>>()
  private readonly sortedKeys = new Map<string, string[]>()
  private history: StoreEvent[] = []
  private readonly listeners = new Set<(ev: StoreEvent) => void>()

  constructor(private readonly historyLimit = 100_000, startRevision = 1) {
    this.revision = startRevision
    this.compactedAt = startRevision
  }

  get currentRevision(): number { return this.revision }
  get compactedRevision(): number { return this.compactedAt }

  onEvent(fn: (ev: StoreEvent) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private objects(resource: string): Map<string, StoredObject> {
    let m = this.byResource.get(resource)
    if (!m) this.byResource.set(resource, (m = new Map()))
    return m
  }

  get(resource: string, key: string): StoredObject | undefined { return this.objects(resource).get(key) }

  /** Keys in etcd order (byte order of the key), cached between adds and deletes. */
  keys(resource: string): string[] {
    let k = this.sortedKeys.get(resource)
    if (!k) this.sortedKeys.set(resource, (k = [...this.objects(resource).keys()].sort(byteOrder)))
    return k
  }

  /**
   * Writes `obj` (undefined deletes). Stamps resourceVersion (and uid/creationTimestamp on create).
   * The caller decides no-ops; every call here is a real write with a new revision.
   */
  write(resource: string, key: string, obj: JsonMap | undefined): StoreEvent {
    const objects = this.objects(resource)
    const prev = objects.get(key)
    const rv = ++this.revision
    let ev: StoreEvent
    if (obj === undefined) {
      if (!prev) throw new Error(`delete of missing ${resource}/${key}`)
      objects.delete(key)
      this.sortedKeys.delete(resource)
      ev = { rv, type: 'DELETED', resource, key, object: prev.withRv(rv), prev }
    } else {
      const meta: JsonMap = { ...(obj.metadata as JsonMap) }
      if (!prev) {
        meta.uid = typeof meta.uid === 'string' && meta.uid ? meta.uid : randomUUID()
        meta.creationTimestamp = typeof meta.creationTimestamp === 'string' ? meta.creationTimestamp : nowTimestamp()
      }
      meta.resourceVersion = String(rv)
      const stored = new StoredObject(resource, key, rv, withMeta(obj, meta))
      objects.set(key, stored)
      if (!prev) this.sortedKeys.delete(resource)
      ev = { rv, type: prev ? 'MODIFIED' : 'ADDED', resource, key, object: stored, prev }
    }
    this.history.push(ev)
    if (this.history.length > this.historyLimit) this.forget(this.history.length - this.historyLimit)
    for (const fn of this.listeners) fn(ev)
    return ev
  }

  private forget(n: number): void {
    this.compactedAt = this.history[n - 1]!.rv
    this.history = this.history.slice(n)
  }

  /** Like `etcdctl compact <current>`: no older revision can be read or watched from. */
  compact(): number {
    this.history = []
    this.compactedAt = this.revision
    return this.revision
  }

  /** Events after `rv` (the caller checked rv >= compactedRevision). */
  eventsAfter(rv: number): StoreEvent[] {
    // Revisions are dense-ish and increasing: binary search the first event past rv.
    let lo = 0
    let hi = this.history.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.history[mid]!.rv <= rv) lo = mid + 1
      else hi = mid
    }
    return this.history.slice(lo)
  }

  /**
   * The resource's objects as they were at revision `rv` (MVCC read), in key order; undefined
   * when that revision was compacted away.
   */
  snapshot(resource: string, rv: number): StoredObject[] | undefined {
    if (rv < this.compactedAt) return undefined
    if (rv >= this.revision) return this.keys(resource).map((k) => this.objects(resource).get(k)!)
    const state = new Map(this.objects(resource))
    const later = this.eventsAfter(rv)
    for (let i = later.length - 1; i >= 0; i--) {
      const ev = later[i]!
      if (ev.resource !== resource) continue
      if (ev.prev) state.set(ev.key, ev.prev)
      else state.delete(ev.key)
    }
    return [...state.keys()].sort(byteOrder).map((k) => state.get(k)!)
  }

  count(resource: string): number { return this.objects(resource).size }
}

function withMeta(obj: JsonMap, meta: JsonMap): JsonMap {
  const out: JsonMap = {}
  for (const [k, v] of Object.entries(obj)) out[k] = k === 'metadata' ? orderMeta(meta) : v
  if (!('metadata' in out)) out.metadata = orderMeta(meta)
  return out
}

const META_ORDER = ['name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields']
function orderMeta(meta: JsonMap): JsonMap {
  const out: JsonMap = {}
  for (const k of META_ORDER) if (meta[k] !== undefined) out[k] = meta[k]!
  return out
}

export const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
