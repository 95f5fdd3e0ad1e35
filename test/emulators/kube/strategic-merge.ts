/**
 * The three patch formats of PATCH requests, with the semantics of apimachinery's strategicpatch
 * and evanphx/json-patch (which the API server uses):
 *  - strategic merge patch: maps merge, `null` deletes, lists with a patchStrategy "merge" merge by
 *    their patchMergeKey (or as a set of scalars), other lists are replaced; directives `$patch`
 *    (replace/delete/merge), `$retainKeys`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`;
 *  - JSON merge patch (RFC 7386): maps merge, `null` deletes, lists are replaced;
 *  - JSON patch (RFC 6902): add/remove/replace/move/copy/test.
 * Errors are thrown as ApiError with the code the real handler answers.
 */
import { ApiError, badRequest, failure, unprocessable } from './status.ts'

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
export type JsonMap = { [k: string]: Json }

/** patchStrategy/patchMergeKey tags of a type, by dotted field path (list items add nothing to the path). */
export interface PatchSchema {
  readonly [path: string]: { readonly strategy: 'merge' | 'retainKeys' | 'merge,retainKeys'; readonly mergeKey?: string }
}

export const isMap = (v: unknown): v is JsonMap => typeof v === 'object' && v !== null && !Array.isArray(v)

const PATCH = '$patch'
const RETAIN = '$retainKeys'
const ORDER = '$setElementOrder/'
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/'
const isDirective = (k: string): boolean => k === PATCH || k === RETAIN || k.startsWith(ORDER) || k.startsWith(DELETE_PRIMITIVE)

/** Go's encoding/json wording for a syntax error, which the API server passes on in 400s. */
export function parseJson(text: string): Json {
  try {
    return JSON.parse(text) as Json
  } catch (err) {
    const msg = (err as Error).message
    if (/end of (JSON )?input|Unterminated/i.test(msg) || text.trim() === '') throw badRequest('unexpected end of JSON input')
    const pos = Number(/position (\d+)/.exec(msg)?.[1] ?? NaN)
    const ch = Number.isFinite(pos) ? text[pos] : /token '?(.)/.exec(msg)?.[1]
    throw badRequest(`invalid character '${ch ?? '?'}' looking for beginning of value`)
  }
}

/** A patch result with no directive keys left, nulls of new content dropped. */
function clean(v: Json): Json {
  if (Array.isArray(v)) return v.filter((x) => !(isMap(x) && x[PATCH] !== undefined)).map(clean)
  if (!isMap(v)) return v
  const out: JsonMap = {}
  for (const [k, x] of Object.entries(v)) if (!isDirective(k) && x !== null) out[k] = clean(x)
  return out
}

function goMap(m: JsonMap): string {
  return `map[${Object.keys(m).sort().map((k) => `${k}:${typeof m[k] === 'object' ? JSON.stringify(m[k]) : String(m[k])}`).join(' ')}]`
}

export function strategicMerge(original: JsonMap, patch: Json, schema: PatchSchema): JsonMap {
  if (!isMap(patch)) throw badRequest('json: cannot unmarshal array into Go value of type map[string]interface {}')
  const merged = mergeMap(original, patch, '', schema)
  return merged ?? {}
}

function mergeMap(original: JsonMap, patch: JsonMap, path: string, schema: PatchSchema): JsonMap | undefined {
  const directive = patch[PATCH]
  if (directive === 'replace') return clean(patch) as JsonMap
  if (directive === 'delete') return undefined
  if (directive !== undefined && directive !== 'merge') throw failure(500, undefined, `unknown patch type: ${String(directive)} in map: ${goMap(patch)}`)
  let result: JsonMap = { ...original }
  const retain = patch[RETAIN]
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw badRequest('invalid patch format of retainKeys')
    const keep = new Set(retain.map(String))
    for (const k of Object.keys(patch)) {
      if (!isDirective(k) && !keep.has(k)) throw failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {})
    }
    result = Object.fromEntries(Object.entries(result).filter(([k]) => keep.has(k)))
  }
  for (const [k, list] of Object.entries(patch)) {
    if (!k.startsWith(DELETE_PRIMITIVE)) continue
    const field = k.slice(DELETE_PRIMITIVE.length)
    if (!Array.isArray(list)) throw badRequest('invalid patch format of primitive list')
    const cur = result[field]
    if (Array.isArray(cur)) result[field] = cur.filter((x) => !list.some((d) => d === x))
  }
  for (const [k, pv] of Object.entries(patch)) {
    if (isDirective(k)) continue
    const fieldPath = path ? `${path}.${k}` : k
    if (pv === null) { delete result[k]; continue }
    const ov = result[k]
    if (isMap(pv)) {
      const m = mergeMap(isMap(ov) ? ov : {}, pv, fieldPath, schema)
      if (m === undefined) delete result[k]
      else result[k] = m
    } else if (Array.isArray(pv)) {
      const meta = schema[fieldPath]
      const order = patch[`${ORDER}${k}`]
      result[k] = meta?.strategy.includes('merge')
        ? mergeList(Array.isArray(ov) ? ov : [], pv, meta.mergeKey, Array.isArray(order) ? order : undefined, fieldPath, schema)
        : (clean(pv) as Json[])
    } else result[k] = pv
  }
  // An order-only directive ($setElementOrder for a list the patch does not touch) reorders it.
  for (const [k, order] of Object.entries(patch)) {
    if (!k.startsWith(ORDER)) continue
    const field = k.slice(ORDER.length)
    if (!Array.isArray(order)) throw badRequest('invalid patch format of setElementOrder list')
    const cur = result[field]
    if (patch[field] === undefined && Array.isArray(cur)) {
      const meta = schema[path ? `${path}.${field}` : field]
      result[field] = normalizeOrder(cur, order, cur, meta?.mergeKey)
    }
  }
  return result
}

const keyOf = (item: Json, mergeKey: string | undefined): string =>
  mergeKey === undefined ? JSON.stringify(item) : isMap(item) ? JSON.stringify(item[mergeKey] ?? null) : JSON.stringify(item)

function mergeList(original: Json[], patch: Json[], mergeKey: string | undefined, order: Json[] | undefined, path: string, schema: PatchSchema): Json[] {
  if (mergeKey === undefined) {
    // A set of scalars: union, first occurrence kept.
    const seen = new Set<string>()
    const union = [...original, ...patch].filter((x) => { const key = keyOf(x, undefined); if (seen.has(key)) return false; seen.add(key); return true })
    return order ? normalizeOrder(union, order, original, undefined) : union
  }
  if (patch.some((x) => isMap(x) && x[PATCH] === 'replace')) return clean(patch.filter((x) => !(isMap(x) && x[PATCH] === 'replace'))) as Json[]
  const deleted = new Set<string>()
  const byKey = new Map<string, JsonMap>()
  const patchItems: Json[] = []
  for (const item of patch) {
    if (!isMap(item)) throw badRequest('unable to merge a non-map list item with a merge key')
    if (item[mergeKey] === undefined) throw failure(500, undefined, `map: ${goMap(item)} does not contain declared merge key: ${mergeKey}`)
    if (item[PATCH] === 'delete') { deleted.add(keyOf(item, mergeKey)); continue }
    byKey.set(keyOf(item, mergeKey), item)
    patchItems.push(item)
  }
  const merged: Json[] = []
  const used = new Set<string>()
  for (const o of original) {
    const key = keyOf(o, mergeKey)
    if (deleted.has(key)) continue
    const p = byKey.get(key)
    if (p && isMap(o)) { merged.push(mergeMap(o, p, path, schema) ?? {}); used.add(key) } else merged.push(o)
  }
  for (const p of patchItems) if (!used.has(keyOf(p, mergeKey)) && isMap(p)) merged.push(mergeMap({}, p, path, schema) ?? {})
  return normalizeOrder(merged, order ?? patchItems, original, mergeKey)
}

/**
 * strategicpatch's normalizeElementOrder + mergeSortedSlice: items named by the patch (or its
 * $setElementOrder) in that order, server-only items in their old order, interleaved by old position.
 */
function normalizeOrder(merged: Json[], patchOrder: Json[], serverOrder: Json[], mergeKey: string | undefined): Json[] {
  const orderKey = (x: Json): string => keyOf(x, mergeKey)
  const patchIdx = new Map(patchOrder.map((x, i) => [orderKey(x), i] as const))
  const serverIdx = new Map(serverOrder.map((x, i) => [orderKey(x), i] as const))
  const left = merged.filter((x) => patchIdx.has(orderKey(x))).sort((a, b) => patchIdx.get(orderKey(a))! - patchIdx.get(orderKey(b))!)
  const right = merged.filter((x) => !patchIdx.has(orderKey(x))).sort((a, b) => (serverIdx.get(orderKey(a)) ?? 0) - (serverIdx.get(orderKey(b)) ?? 0))
  const out: Json[] = []
  let i = 0
  let j = 0
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]!)
    else if (j >= right.length) out.push(left[i++]!)
    else {
      const li = serverIdx.get(orderKey(left[i]!))
      const ri = serverIdx.get(orderKey(right[j]!))
      if (li !== undefined && ri !== undefined && li < ri) out.push(left[i++]!)
      else out.push(right[j++]!)
    }
  }
  return out
}

/** RFC 7386. */
export function mergePatch(original: Json, patch: Json): Json {
  if (!isMap(patch)) return patch
  const result: JsonMap = isMap(original) ? { ...original } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k]
    else result[k] = mergePatch(result[k] ?? null, v)
  }
  return result
}

/** RFC 6902. A failing operation is a 422 (NewGenericServerResponse in the patch handler). */
export function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch')
  let cur: Json = structuredClone(doc)
  for (const op of ops) {
    if (!isMap(op)) throw badRequest('json: cannot unmarshal into Go value of type jsonpatch.Operation')
    cur = applyOp(cur, op)
  }
  return cur
}

function pointer(p: Json | undefined): string[] {
  if (typeof p !== 'string' || (p !== '' && !p.startsWith('/'))) throw unprocessable()
  return p === '' ? [] : p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

function getAt(doc: Json, path: string[]): Json | undefined {
  let cur: Json | undefined = doc
  for (const seg of path) {
    if (Array.isArray(cur)) cur = /^\d+$/.test(seg) ? cur[Number(seg)] : undefined
    else if (isMap(cur)) cur = Object.hasOwn(cur, seg) ? cur[seg] : undefined
    else return undefined
  }
  return cur
}

function parentOf(doc: Json, path: string[]): { parent: Json | undefined; last: string } {
  if (path.length === 0) throw unprocessable()
  return { parent: getAt(doc, path.slice(0, -1)), last: path[path.length - 1]! }
}

function add(doc: Json, path: string[], value: Json): Json {
  if (path.length === 0) return value
  const { parent, last } = parentOf(doc, path)
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : /^\d+$/.test(last) ? Number(last) : NaN
    if (!(i >= 0 && i <= parent.length)) throw unprocessable()
    parent.splice(i, 0, value)
  } else if (isMap(parent)) parent[last] = value
  else throw unprocessable()
  return doc
}

function remove(doc: Json, path: string[]): Json {
  const { parent, last } = parentOf(doc, path)
  if (Array.isArray(parent)) {
    const i = /^\d+$/.test(last) ? Number(last) : NaN
    if (!(i >= 0 && i < parent.length)) throw unprocessable()
    parent.splice(i, 1)
  } else if (isMap(parent) && Object.hasOwn(parent, last)) delete parent[last]
  else throw unprocessable()
  return doc
}

function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]))
  }
  return false
}
export { deepEqual as jsonEqual }

function applyOp(doc: Json, op: JsonMap): Json {
  const path = pointer(op.path)
  switch (op.op) {
    case 'add':
      if (op.value === undefined) throw unprocessable()
      return add(doc, path, structuredClone(op.value))
    case 'remove':
      return remove(doc, path)
    case 'replace':
      if (getAt(doc, path) === undefined || op.value === undefined) throw unprocessable()
      return path.length === 0 ? structuredClone(op.value) : add(remove(doc, path), path, structuredClone(op.value))
    case 'move': {
      const from = pointer(op.from)
      const v = getAt(doc, from)
      if (v === undefined) throw unprocessable()
      return add(remove(doc, from), path, v)
    }
    case 'copy': {
      const v = getAt(doc, pointer(op.from))
      if (v === undefined) throw unprocessable()
      return add(doc, path, structuredClone(v))
    }
    case 'test':
      if (!deepEqual(getAt(doc, path), op.value ?? null)) throw unprocessable()
      return doc
    default:
      throw unprocessable()
  }
}

export { ApiError }
