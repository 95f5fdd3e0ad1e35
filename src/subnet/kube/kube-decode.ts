/**
 * Decodes API answers into the reduced shapes of kube-types.ts, copying only the fields weft
 * reads: the parsed answer (a whole Node is ~5-10 KB of images, addresses, capacity ...) becomes
 * garbage at once, so a 5,000-node list keeps annotations, CIDRs and conditions only.
 * Everything is checked; a wrong shape throws DecodeError naming the field (items[3].metadata.name).
 */
import type { KubeNode, KubePod, KubeStatus, NodeCondition, NodeList, ObjectMeta } from './kube-types.ts'

export class DecodeError extends Error {
  constructor(readonly field: string, rule: string) {
    super(`${field === '' ? 'answer' : field}: ${rule}`)
    this.name = 'DecodeError'
  }
}

type Obj = { readonly [key: string]: unknown }

export function decodeNode(value: unknown, at = ''): KubeNode {
  const o = object(value, at)
  const spec = optObject(o['spec'], field(at, 'spec'))
  const status = optObject(o['status'], field(at, 'status'))
  const podCIDR = optString(spec?.['podCIDR'], field(at, 'spec.podCIDR'))
  const podCIDRs = optStrings(spec?.['podCIDRs'], field(at, 'spec.podCIDRs'))
  const conditions = status === undefined ? undefined : optConditions(status['conditions'], field(at, 'status.conditions'))
  return {
    metadata: decodeMeta(o['metadata'], field(at, 'metadata')),
    spec: { ...(podCIDR === undefined ? {} : { podCIDR }), ...(podCIDRs === undefined ? {} : { podCIDRs }) },
    ...(conditions === undefined ? {} : { status: { conditions } }),
  }
}

export function decodePod(value: unknown): KubePod {
  const o = object(value, '')
  const spec = optObject(o['spec'], 'spec')
  const nodeName = optString(spec?.['nodeName'], 'spec.nodeName')
  return { metadata: decodeMeta(o['metadata'], 'metadata'), spec: nodeName === undefined ? {} : { nodeName } }
}

export function decodeNodeList(value: unknown): NodeList {
  const o = object(value, '')
  const meta = optObject(o['metadata'], 'metadata')
  const resourceVersion = optString(meta?.['resourceVersion'], 'metadata.resourceVersion')
  if (resourceVersion === undefined || resourceVersion === '') throw new DecodeError('metadata.resourceVersion', 'missing')
  const cont = optString(meta?.['continue'], 'metadata.continue')
  const raw = o['items'] ?? []
  if (!Array.isArray(raw)) throw new DecodeError('items', 'not an array')
  const items = raw.map((item, i) => decodeNode(item, `items[${i}]`))
  return { resourceVersion, items, ...(cont === undefined || cont === '' ? {} : { continue: cont }) }
}

/** The Status of an error answer or a watch ERROR event; undefined when `value` is no Status. */
export function asStatus(value: unknown): KubeStatus | undefined {
  if (typeof value !== 'object' || value === null || (value as Obj)['kind'] !== 'Status') return undefined
  const o = value as Obj
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
  const message = text(o['message'])
  const reason = text(o['reason'])
  const details = o['details']
  return {
    kind: 'Status',
    apiVersion: 'v1',
    status: o['status'] === 'Success' ? 'Success' : 'Failure',
    ...(message === undefined ? {} : { message }),
    ...(reason === undefined ? {} : { reason }),
    ...(typeof o['code'] === 'number' ? { code: o['code'] } : {}),
    ...(typeof details === 'object' && details !== null && !Array.isArray(details) ? { details: details as Obj } : {}),
  }
}

export function decodeMeta(value: unknown, at: string): ObjectMeta {
  const o = object(value, at)
  const name = o['name']
  if (typeof name !== 'string' || name === '') throw new DecodeError(field(at, 'name'), name === undefined ? 'missing' : 'not a non-empty string')
  const namespace = optString(o['namespace'], field(at, 'namespace'))
  const uid = optString(o['uid'], field(at, 'uid'))
  const resourceVersion = optString(o['resourceVersion'], field(at, 'resourceVersion'))
  const annotations = optAnnotations(o['annotations'], field(at, 'annotations'))
  return {
    name,
    ...(namespace === undefined ? {} : { namespace }),
    ...(uid === undefined ? {} : { uid }),
    ...(resourceVersion === undefined ? {} : { resourceVersion }),
    ...(annotations === undefined ? {} : { annotations }),
  }
}

function optAnnotations(value: unknown, at: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined
  const o = object(value, at)
  const out: Record<string, string> = {}
  for (const key of Object.keys(o)) {
    const v = o[key]
    if (typeof v !== 'string') throw new DecodeError(`${at}["${key}"]`, 'not a string')
    // defineProperty: an annotation named "__proto__" stays an annotation.
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true })
  }
  return out
}

function optConditions(value: unknown, at: string): NodeCondition[] | undefined {
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value)) throw new DecodeError(at, 'not an array')
  return value.map((item, i): NodeCondition => {
    const where = `${at}[${i}]`
    const c = object(item, where)
    const type = optString(c['type'], `${where}.type`)
    const status = optString(c['status'], `${where}.status`)
    if (type === undefined) throw new DecodeError(`${where}.type`, 'missing')
    if (status === undefined) throw new DecodeError(`${where}.status`, 'missing')
    const out: { -readonly [K in keyof NodeCondition]: NodeCondition[K] } = { type, status }
    for (const key of ['reason', 'message', 'lastHeartbeatTime', 'lastTransitionTime'] as const) {
      const v = optString(c[key], `${where}.${key}`)
      if (v !== undefined) out[key] = v
    }
    return out
  })
}

function object(value: unknown, at: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DecodeError(at, value === undefined ? 'missing' : 'not an object')
  return value as Obj
}

function optObject(value: unknown, at: string): Obj | undefined {
  return value === undefined || value === null ? undefined : object(value, at)
}

function optString(value: unknown, at: string): string | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new DecodeError(at, 'not a string')
  return value
}

function optStrings(value: unknown, at: string): string[] | undefined {
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value)) throw new DecodeError(at, 'not an array')
  return value.map((v, i) => {
    if (typeof v !== 'string') throw new DecodeError(`${at}[${i}]`, 'not a string')
    return v
  })
}

function field(at: string, name: string): string {
  return at === '' ? name : `${at}.${name}`
}
