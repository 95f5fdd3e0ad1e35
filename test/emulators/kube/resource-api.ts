/**
 * The REST semantics of the served resources on top of the object store: get, list (limit and
 * continue, resourceVersion/resourceVersionMatch, selectors), watch, create, update, patch and
 * delete with their preconditions, subresource rules, validation and no-op detection. Used by
 * the HTTP front end and by the admin API (which skips only authentication and authorization).
 */
import type { ServerResponse } from 'node:http'
import { ObjectStore, nowTimestamp, type StoredObject } from './object-store.ts'
import { applySubresourceRule, type ResourceDef } from './resources.ts'
import { parseFieldSelector, parseLabelSelector, type Selector } from './selectors.ts'
import {
  alreadyExists, badRequest, conflict, expired, failure, invalid, notFound, success, tooLargeResourceVersion, unsupportedMediaType,
  type ApiError, type FieldError, type StatusBody,
} from './status.ts'
import { isMap, jsonEqual, jsonPatch, mergePatch, parseJson, strategicMerge, type Json, type JsonMap } from './strategic-merge.ts'
import { Watcher } from './watch.ts'

export const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml']

export interface ApiTuning {
  /** How long a read waits for a resourceVersion newer than the current one before 504 (real: 3 s). */
  tooLargeWaitMs: number
  bookmarkIntervalMs: number
  /** minRequestTimeout: a watch without timeoutSeconds lasts a random time in [this, 2*this]. */
  minRequestTimeoutMs: number
  maxQueuedEvents: number
  /** WatchList feature gate (sendInitialEvents). */
  watchList: boolean
}

export interface WriteResult { object: StoredObject; warnings: string[]; changed: boolean }

const TOO_OLD_LIST = 'The resourceVersion for the provided list is too old.'
const INCONSISTENT_CONTINUE = 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.'

function listOptionsInvalid(errs: FieldError[]): ApiError {
  return invalid('ListOptions', '', errs, 'meta.k8s.io')
}

function parseRv(raw: string): number {
  if (!/^\d+$/.test(raw)) {
    throw badRequest(`invalid resource version: resourceVersion: Invalid value: "${raw}": strconv.ParseUint: parsing "${raw}": invalid syntax`)
  }
  return Number(raw)
}

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv, start })).toString('base64url')
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: string; rv?: number; start?: string }
    if (t.v !== 'meta.k8s.io/v1') throw new Error('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)')
    if (typeof t.rv !== 'number' || typeof t.start !== 'string' || t.start === '') throw new Error('continue key is not valid: encoded start key is empty')
    return { rv: t.rv, start: t.start }
  } catch (err) {
    throw badRequest(`invalid continue token: ${(err as Error).message}`)
  }
}

export class ResourceApi {
  readonly watchers = new Set<Watcher>()

  constructor(readonly store: ObjectStore, private readonly tuning: ApiTuning) {
    store.onEvent((ev) => { for (const w of this.watchers) w.deliver(ev) })
  }

  key(def: ResourceDef, ns: string | undefined, name: string): string {
    return def.namespaced ? `${ns}/${name}` : name
  }

  get(def: ResourceDef, ns: string | undefined, name: string): StoredObject {
    const o = this.store.get(def.resource, this.key(def, ns, name))
    if (!o) throw notFound(def.resource, name)
    return o
  }

  private selectors(def: ResourceDef, q: URLSearchParams): (o: StoredObject) => boolean {
    const labels: Selector = parseLabelSelector(q.get('labelSelector'))
    const fields: Selector = parseFieldSelector(q.get('fieldSelector'), def.fieldLabels)
    if (labels.empty && fields.empty) return () => true
    return (o) => {
      const lab = ((o.obj.metadata as JsonMap).labels ?? {}) as Record<string, string>
      return labels.matches((k) => lab[k]) && fields.matches((k) => def.fieldValue(o.obj, k))
    }
  }

  /** Waits (like waitUntilFreshAndBlock) until the store reached `rv`, else 504 Too large resource version. */
  private async fresh(rv: number): Promise<void> {
    const end = Date.now() + this.tuning.tooLargeWaitMs
    while (this.store.currentRevision < rv) {
      if (Date.now() >= end) throw tooLargeResourceVersion(rv, this.store.currentRevision)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** The List body, as JSON text (items joined from cached renderings: 5,000 nodes stay cheap). */
  async list(def: ResourceDef, ns: string | undefined, q: URLSearchParams): Promise<string> {
    const rvParam = q.get('resourceVersion') ?? ''
    const match = q.get('resourceVersionMatch') ?? ''
    const cont = q.get('continue') ?? ''
    const limit = q.has('limit') ? Number(q.get('limit')) : 0
    const errs: FieldError[] = []
    if (match) {
      if (!rvParam) errs.push({ type: 'Forbidden', field: 'resourceVersionMatch', detail: 'resourceVersionMatch is forbidden unless resourceVersion is provided' })
      if (cont) errs.push({ type: 'Forbidden', field: 'resourceVersionMatch', detail: 'resourceVersionMatch is forbidden when continue is provided' })
      if (match !== 'Exact' && match !== 'NotOlderThan') errs.push({ type: 'NotSupported', field: 'resourceVersionMatch', value: match, detail: 'supported values: "Exact", "NotOlderThan", ""' })
      if (match === 'Exact' && rvParam === '0') errs.push({ type: 'Forbidden', field: 'resourceVersionMatch', detail: 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"' })
    }
    if (q.has('sendInitialEvents')) errs.push({ type: 'Forbidden', field: 'sendInitialEvents', detail: 'sendInitialEvents is forbidden for list' })
    if (errs.length) throw listOptionsInvalid(errs)
    if (!Number.isInteger(limit) || limit < 0) throw badRequest(`limit: Invalid value: "${q.get('limit')}"`)
    const keep = this.selectors(def, q)
    const inNs = (o: StoredObject): boolean => ns === undefined || o.key.startsWith(`${ns}/`)
    const render = (rv: number, items: StoredObject[], more?: { continue: string; remaining?: number }): string => {
      const meta: JsonMap = { resourceVersion: String(rv) }
      if (more) { meta.continue = more.continue; if (more.remaining !== undefined) meta.remainingItemCount = more.remaining }
      return `{"kind":"${def.kind}List","apiVersion":"v1","metadata":${JSON.stringify(meta)},"items":[${items.map((o) => o.itemJson).join(',')}]}\n`
    }
    // The cacher answers from its cache unless this list must go to etcd (shouldDelegateList).
    const delegate = rvParam === '' || cont !== '' || (limit > 0 && rvParam !== '0') || match === 'Exact'
    if (!delegate) {
      const rv = rvParam === '0' ? 0 : parseRv(rvParam)
      await this.fresh(rv)
      const all = this.store.snapshot(def.resource, this.store.currentRevision)!
      return render(this.store.currentRevision, all.filter((o) => inNs(o) && keep(o)))
    }
    let at: number
    let start = ''
    if (cont) {
      if (rvParam !== '' && rvParam !== '0') throw badRequest('specifying resource version is not allowed when using continue')
      const token = decodeContinue(cont)
      start = token.start
      at = token.rv === -1 ? this.store.currentRevision : token.rv
    } else if (rvParam === '' || match === 'NotOlderThan' || (match === '' && limit === 0)) {
      if (rvParam !== '') await this.fresh(parseRv(rvParam))
      at = this.store.currentRevision
    } else {
      at = parseRv(rvParam) // Exact, or the legacy exact read of resourceVersion=N with a limit
      if (at > this.store.currentRevision) await this.fresh(at)
    }
    const snap = this.store.snapshot(def.resource, at)
    if (!snap) {
      if (limit > 0 || cont) throw expired(INCONSISTENT_CONTINUE, { continue: encodeContinue(-1, start || '\u0000') })
      throw expired(TOO_OLD_LIST)
    }
    const candidates = snap.filter((o) => inNs(o) && o.key >= start && keep(o))
    if (limit === 0 || candidates.length <= limit) return render(at, candidates)
    const page = candidates.slice(0, limit)
    const last = page[page.length - 1]!.key
    const noSelectors = !q.get('labelSelector') && !q.get('fieldSelector')
    return render(at, page, { continue: encodeContinue(at, `${last}\u0000`), ...(noSelectors ? { remaining: candidates.length - limit } : {}) })
  }

  /** Starts a watch stream on `res` (the HTTP checks already passed). */
  async watch(def: ResourceDef, ns: string | undefined, q: URLSearchParams, res: ServerResponse): Promise<void> {
    const rvParam = q.get('resourceVersion') ?? ''
    const match = q.get('resourceVersionMatch') ?? ''
    const sendInitial = q.get('sendInitialEvents')
    const bookmarks = q.get('allowWatchBookmarks') === 'true' || q.get('allowWatchBookmarks') === '1'
    const errs: FieldError[] = []
    if (sendInitial !== null) {
      if (match !== 'NotOlderThan') errs.push({ type: 'Forbidden', field: 'resourceVersionMatch', detail: 'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan' })
      if (!this.tuning.watchList) errs.push({ type: 'Forbidden', field: 'sendInitialEvents', detail: 'sendInitialEvents is available only when the WatchList feature is enabled' })
      else if (!bookmarks) errs.push({ type: 'Forbidden', field: 'allowWatchBookmarks', detail: 'allowWatchBookmarks must be set to true when sendInitialEvents is set' })
    } else if (match) errs.push({ type: 'Forbidden', field: 'resourceVersionMatch', detail: 'resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided' })
    if (errs.length) throw listOptionsInvalid(errs)
    const keep = this.selectors(def, q)
    const rv = rvParam === '' ? undefined : parseRv(rvParam)
    const tsRaw = q.get('timeoutSeconds')
    const ts = tsRaw === null ? 0 : Number(tsRaw)
    const timeoutMs = ts > 0 ? ts * 1000 : Math.round(this.tuning.minRequestTimeoutMs * (1 + Math.random()))
    const w = new Watcher(res, { resource: def.resource, namespace: ns, matches: keep }, {
      allowBookmarks: bookmarks, timeoutMs, bookmarkIntervalMs: this.tuning.bookmarkIntervalMs, maxQueued: this.tuning.maxQueuedEvents,
      bookmarkKind: { kind: def.kind, apiVersion: 'v1' }, currentRevision: () => this.store.currentRevision,
    })
    const initial = sendInitial === 'true' || (sendInitial === null && (rv === undefined || rv === 0))
    if (initial) {
      for (const o of this.store.snapshot(def.resource, this.store.currentRevision)!) if (ns === undefined || o.key.startsWith(`${ns}/`)) w.added(o)
      if (sendInitial === 'true') w.bookmark(this.store.currentRevision, true)
    } else if (rv !== undefined && rv !== 0) {
      if (rv < this.store.compactedRevision) {
        w.error(expired(`too old resource version: ${rv} (${this.store.compactedRevision})`).body)
        return
      }
      for (const ev of this.store.eventsAfter(rv)) w.deliver(ev)
    }
    if (w.isClosed) return
    this.watchers.add(w)
    w.onClose = () => this.watchers.delete(w)
  }

  closeWatches(): number {
    const n = this.watchers.size
    for (const w of [...this.watchers]) w.close()
    return n
  }

  /** Checks, normalizes and stores `next` as the new state of `old` (undefined: create). */
  commit(def: ResourceDef, next: JsonMap, old: StoredObject | undefined, subresource?: 'status'): WriteResult {
    if (!isMap(next.metadata)) next = { ...next, metadata: {} }
    const meta = next.metadata as JsonMap
    const name = String(meta.name ?? '')
    if (old) {
      const rv = meta.resourceVersion
      if (rv !== undefined && rv !== null && rv !== '' && rv !== (old.obj.metadata as JsonMap).resourceVersion) throw conflict(def.resource, name)
      next = applySubresourceRule(next, old.obj, subresource)
    }
    const unknown: string[] = []
    let obj = def.normalize({ ...next, kind: def.kind, apiVersion: 'v1' }, unknown)
    obj = { kind: def.kind, apiVersion: 'v1', ...obj }
    const errs = def.validate(obj, old?.obj)
    if (errs.length) throw invalid(def.kind, name, errs)
    const warnings = unknown.filter((f) => f !== 'kind' && f !== 'apiVersion').map((f) => `unknown field "${f}"`)
    const key = this.key(def, meta.namespace as string | undefined, name)
    if (old) {
      // Server-owned metadata survives updates; a write that changes nothing is not a write.
      const m = { ...(obj.metadata as JsonMap) }
      const om = old.obj.metadata as JsonMap
      m.uid = om.uid!; m.creationTimestamp = om.creationTimestamp!; m.resourceVersion = om.resourceVersion!
      if (om.deletionTimestamp !== undefined) m.deletionTimestamp = om.deletionTimestamp
      obj = { ...obj, metadata: m }
      const candidate = def.normalize(obj, [])
      if (jsonEqual(candidate as Json, def.normalize(old.obj, []) as Json)) return { object: old, warnings, changed: false }
      const finalizers = Array.isArray(m.finalizers) ? m.finalizers : []
      if (m.deletionTimestamp !== undefined && finalizers.length === 0) {
        const ev = this.store.write(def.resource, key, undefined)
        return { object: ev.object, warnings, changed: true }
      }
      return { object: this.store.write(def.resource, key, reorderMeta(candidate)).object, warnings, changed: true }
    }
    if (this.store.get(def.resource, key)) throw alreadyExists(def.resource, name)
    const fresh = { ...(obj.metadata as JsonMap) }
    delete fresh.resourceVersion; delete fresh.uid; delete fresh.creationTimestamp; delete fresh.deletionTimestamp
    return { object: this.store.write(def.resource, key, { ...obj, metadata: fresh }).object, warnings, changed: true }
  }

  create(def: ResourceDef, ns: string | undefined, body: Json): WriteResult {
    if (!isMap(body)) throw badRequest(`json: cannot unmarshal ${Array.isArray(body) ? 'array' : typeof body} into Go value of type struct`)
    checkKind(def, body)
    const meta: JsonMap = isMap(body.metadata) ? { ...body.metadata } : {}
    if (def.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request')
      meta.namespace = ns!
    }
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') throw badRequest('resourceVersion should not be set on objects to be created')
    return this.commit(def, { ...body, metadata: meta }, undefined)
  }

  update(def: ResourceDef, ns: string | undefined, name: string, body: Json, subresource?: 'status'): WriteResult {
    if (!isMap(body)) throw badRequest('json: cannot unmarshal into Go value of type struct')
    checkKind(def, body)
    const meta: JsonMap = isMap(body.metadata) ? { ...body.metadata } : {}
    if (meta.name !== name) throw badRequest(`the name of the object (${String(meta.name ?? '')}) does not match the name on the URL (${name})`)
    if (def.namespaced) meta.namespace ??= ns!
    const old = this.get(def, ns, name)
    return this.commit(def, { ...body, metadata: meta }, old, subresource)
  }

  patch(def: ResourceDef, ns: string | undefined, name: string, contentType: string, text: string, subresource?: 'status'): WriteResult {
    const type = contentType.split(';')[0]!.trim().toLowerCase()
    if (!PATCH_TYPES.includes(type)) throw unsupportedMediaType(PATCH_TYPES)
    if (type === 'application/apply-patch+yaml') throw failure(415, 'UnsupportedMediaType', 'the emulator does not implement server-side apply (application/apply-patch+yaml)')
    const old = this.get(def, ns, name)
    let patched: Json
    if (type === 'application/json-patch+json') patched = jsonPatch(old.obj, parseJson(text))
    else {
      let patch: Json
      try { patch = parseJson(text) } catch (err) {
        if (type === 'application/merge-patch+json') throw badRequest(`error decoding patch: ${(err as ApiError).message}`)
        throw err
      }
      patched = type === 'application/merge-patch+json' ? mergePatch(old.obj, patch) : strategicMerge(old.obj, patch, def.patchSchema)
    }
    if (!isMap(patched)) throw failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {})
    const meta: JsonMap = isMap(patched.metadata) ? { ...patched.metadata } : {}
    if (meta.name !== name) throw badRequest(`the name of the object (${String(meta.name ?? '')}) does not match the name on the URL (${name})`)
    return this.commit(def, { ...patched, metadata: meta }, old, subresource)
  }

  /** DELETE: preconditions, finalizers (deletionTimestamp first), then the object is gone. */
  delete(def: ResourceDef, ns: string | undefined, name: string, body: Json | undefined): { status: StatusBody | StoredObject } {
    const old = this.get(def, ns, name)
    const om = old.obj.metadata as JsonMap
    const pre = isMap(body) && isMap(body.preconditions) ? body.preconditions : {}
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== om.resourceVersion) {
      throw conflict(def.resource, name, `Precondition failed: ResourceVersion in precondition: ${String(pre.resourceVersion)}, ResourceVersion in object meta: ${String(om.resourceVersion)}`)
    }
    if (pre.uid !== undefined && pre.uid !== om.uid) {
      throw conflict(def.resource, name, `Precondition failed: UID in precondition: ${String(pre.uid)}, UID in object meta: ${String(om.uid)}`)
    }
    const key = this.key(def, ns, name)
    const finalizers = Array.isArray(om.finalizers) ? om.finalizers : []
    let result: StoredObject
    if (finalizers.length > 0) {
      result = om.deletionTimestamp !== undefined ? old
        : this.store.write(def.resource, key, { ...old.obj, metadata: reorderMeta({ ...old.obj, metadata: { ...om, deletionTimestamp: nowTimestamp(), deletionGracePeriodSeconds: 0 } }).metadata! }).object
    } else result = this.store.write(def.resource, key, undefined).object
    // Pods answer with the object; nodes (like most resources) with a success Status.
    if (def.resource === 'pods' || finalizers.length > 0) return { status: result }
    return { status: success({ name, kind: def.resource, uid: String(om.uid) }) }
  }
}

function checkKind(def: ResourceDef, body: JsonMap): void {
  if (body.apiVersion !== undefined && body.apiVersion !== 'v1') throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (v1)`)
  if (body.kind !== undefined && body.kind !== def.kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${def.kind})`)
}

const META_ORDER = ['name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields']
function reorderMeta(obj: JsonMap): JsonMap {
  const m = obj.metadata as JsonMap
  const out: JsonMap = {}
  for (const k of META_ORDER) if (m[k] !== undefined) out[k] = m[k]!
  return { ...obj, metadata: out }
}
