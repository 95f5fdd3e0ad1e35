/**
 * The two core/v1 kinds served (Node, Pod): their field order and known fields (the server drops
 * unknown ones and warns), the defaults it fills, the v1 podCIDR/podCIDRs conversion, the
 * validation it runs on create/update (the parts clients can trip), the status-subresource rules
 * and the registered field selectors.
 */
import { isMap, type Json, type JsonMap, type PatchSchema } from './strategic-merge.ts'
import type { FieldError } from './status.ts'

export interface ResourceDef {
  readonly resource: 'nodes' | 'pods'
  readonly kind: 'Node' | 'Pod'
  readonly namespaced: boolean
  readonly patchSchema: PatchSchema
  readonly fieldLabels: readonly string[]
  fieldValue(obj: JsonMap, label: string): string | undefined
  /** Orders keys as Go's structs do, drops unknown ones (reported in `unknown`), fills defaults. */
  normalize(obj: JsonMap, unknown: string[]): JsonMap
  validate(obj: JsonMap, old: JsonMap | undefined): FieldError[]
}

type Shape = { readonly [k: string]: Shape | 'any' | 'item' } & { readonly $item?: Shape }

const META_PATCH: PatchSchema = {
  'metadata.finalizers': { strategy: 'merge' },
  'metadata.ownerReferences': { strategy: 'merge', mergeKey: 'uid' },
}

const META: Shape = {
  name: 'any', generateName: 'any', namespace: 'any', selfLink: 'any', uid: 'any', resourceVersion: 'any', generation: 'any',
  creationTimestamp: 'any', deletionTimestamp: 'any', deletionGracePeriodSeconds: 'any', labels: 'any', annotations: 'any',
  ownerReferences: 'any', finalizers: 'any', managedFields: 'any',
}

const NODE: Shape = {
  kind: 'any', apiVersion: 'any', metadata: META,
  spec: { podCIDR: 'any', podCIDRs: 'any', providerID: 'any', unschedulable: 'any', taints: 'any', configSource: 'any', externalID: 'any' },
  status: {
    capacity: 'any', allocatable: 'any', phase: 'any',
    conditions: { $item: { type: 'any', status: 'any', lastHeartbeatTime: 'any', lastTransitionTime: 'any', reason: 'any', message: 'any' } } as Shape,
    addresses: { $item: { type: 'any', address: 'any' } } as Shape,
    daemonEndpoints: 'any', nodeInfo: 'any', images: 'any', volumesInUse: 'any', volumesAttached: 'any', config: 'any', runtimeHandlers: 'any', features: 'any',
  },
}

const POD: Shape = { kind: 'any', apiVersion: 'any', metadata: META, spec: 'any', status: 'any' }

/** Reorders `obj` by `shape`, recording dropped field paths. */
function shaped(obj: JsonMap, shape: Shape, path: string, unknown: string[]): JsonMap {
  const out: JsonMap = {}
  for (const [k, sub] of Object.entries(shape)) {
    if (k === '$item' || obj[k] === undefined) continue
    const v = obj[k]!
    if (sub === 'any' || sub === 'item') out[k] = v
    else if (sub.$item && Array.isArray(v)) out[k] = v.map((x, i) => (isMap(x) ? shaped(x, sub.$item!, `${path}${k}[${i}].`, unknown) : x))
    else if (isMap(v)) out[k] = shaped(v, sub, `${path}${k}.`, unknown)
    else out[k] = v
  }
  for (const k of Object.keys(obj)) if (!(k in shape)) unknown.push(`${path}${k}`)
  return out
}

const NODE_INFO_KEYS = ['machineID', 'systemUUID', 'bootID', 'kernelVersion', 'osImage', 'containerRuntimeVersion', 'kubeletVersion', 'kubeProxyVersion', 'operatingSystem', 'architecture']

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

export function parseCidr(s: string): { v6: boolean } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s)
  if (!m) return undefined
  const [addr, bits] = [m[1]!, Number(m[2])]
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(addr)) return addr.split('.').every((o) => Number(o) <= 255 && !/^0\d/.test(o)) && bits <= 32 ? { v6: false } : undefined
  if (addr.includes(':') && /^[0-9a-fA-F:.]+$/.test(addr) && bits <= 128 && (addr.match(/::/g) ?? []).length <= 1) return { v6: true }
  return undefined
}

function validateMeta(obj: JsonMap, old: JsonMap | undefined, namespaced: boolean): FieldError[] {
  const errs: FieldError[] = []
  const meta = isMap(obj.metadata) ? obj.metadata : {}
  const name = meta.name
  if (typeof name !== 'string' || name === '') errs.push({ type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' })
  else if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253) errs.push({ type: 'Invalid', field: 'metadata.name', value: name, detail: SUBDOMAIN_MSG })
  if (namespaced && (typeof meta.namespace !== 'string' || meta.namespace === '')) errs.push({ type: 'Required', field: 'metadata.namespace' })
  for (const which of ['labels', 'annotations'] as const) {
    const m = meta[which]
    if (m === undefined) continue
    if (!isMap(m)) { errs.push({ type: 'Invalid', field: `metadata.${which}`, value: m, detail: 'must be a map of strings' }); continue }
    for (const [k, v] of Object.entries(m)) {
      if (!QUALIFIED_NAME.test(k)) errs.push({ type: 'Invalid', field: `metadata.${which}`, value: k, detail: "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')" })
      if (typeof v !== 'string') errs.push({ type: 'Invalid', field: `metadata.${which}.${k}`, value: v, detail: 'must be a string' })
      else if (which === 'labels' && (!LABEL_VALUE.test(v) || v.length > 63)) errs.push({ type: 'Invalid', field: `metadata.labels`, value: v, detail: "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')" })
    }
  }
  if (old) {
    const om = old.metadata as JsonMap
    for (const f of ['name', 'uid', 'creationTimestamp', ...(namespaced ? ['namespace'] : [])]) {
      if (meta[f] !== undefined && meta[f] !== om[f]) errs.push({ type: 'Invalid', field: `metadata.${f}`, value: meta[f], detail: 'field is immutable' })
    }
  }
  return errs
}

const strings = (v: Json | undefined): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])

export const NODES: ResourceDef = {
  resource: 'nodes',
  kind: 'Node',
  namespaced: false,
  patchSchema: {
    ...META_PATCH,
    'spec.podCIDRs': { strategy: 'merge' },
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
    'status.addresses': { strategy: 'merge', mergeKey: 'type' },
  },
  fieldLabels: ['metadata.name', 'spec.unschedulable'],
  fieldValue(obj, label) {
    if (label === 'metadata.name') return (obj.metadata as JsonMap).name as string
    if (label === 'spec.unschedulable') return String((obj.spec as JsonMap | undefined)?.unschedulable === true)
    return undefined
  },
  normalize(obj, unknown) {
    const out = shaped(obj, NODE, '', unknown)
    const spec: JsonMap = isMap(out.spec) ? out.spec : {}
    // v1 <-> internal conversion: podCIDRs wins when set; podCIDR mirrors its first element.
    const cidrs = strings(spec.podCIDRs)
    if (cidrs.length > 0) spec.podCIDR = cidrs[0]!
    else if (typeof spec.podCIDR === 'string' && spec.podCIDR !== '') spec.podCIDRs = [spec.podCIDR]
    if (spec.podCIDR === '') delete spec.podCIDR
    if (Array.isArray(spec.podCIDRs) && spec.podCIDRs.length === 0) delete spec.podCIDRs
    const status: JsonMap = isMap(out.status) ? out.status : {}
    if (isMap(status.capacity) && status.allocatable === undefined) status.allocatable = status.capacity
    if (!isMap(status.daemonEndpoints)) status.daemonEndpoints = { kubeletEndpoint: { Port: 0 } }
    const info: JsonMap = isMap(status.nodeInfo) ? status.nodeInfo : {}
    status.nodeInfo = Object.fromEntries(NODE_INFO_KEYS.map((k) => [k, typeof info[k] === 'string' ? info[k] : '']))
    const reordered = shaped({ ...out, spec: shaped(spec, NODE.spec as Shape, '', []), status: shaped(status, NODE.status as Shape, '', []) }, NODE, '', [])
    return reordered
  },
  validate(obj, old) {
    const errs = validateMeta(obj, old, false)
    const spec = isMap(obj.spec) ? obj.spec : {}
    const cidrs = Array.isArray(spec.podCIDRs) ? spec.podCIDRs : []
    cidrs.forEach((c, i) => {
      if (typeof c !== 'string' || !parseCidr(c)) errs.push({ type: 'Invalid', field: `spec.podCIDRs[${i}]`, value: cidrs, detail: 'must be valid CIDR' })
    })
    if (cidrs.length > 1) {
      const fams = cidrs.map((c) => (typeof c === 'string' ? parseCidr(c)?.v6 : undefined))
      if (cidrs.length > 2 || fams[0] === fams[1]) errs.push({ type: 'Invalid', field: 'spec.podCIDRs', value: cidrs, detail: 'may specify no more than one CIDR for each IP family' })
    }
    const status = isMap(obj.status) ? obj.status : {}
    const seen = new Set<string>()
    const addresses = Array.isArray(status.addresses) ? status.addresses : []
    addresses.forEach((a, i) => {
      const key = JSON.stringify(a)
      if (seen.has(key)) errs.push({ type: 'Duplicate', field: `status.addresses[${i}]`, value: a })
      seen.add(key)
    })
    if (Array.isArray(spec.taints)) {
      spec.taints.forEach((t, i) => {
        if (!isMap(t) || typeof t.key !== 'string' || t.key === '') errs.push({ type: 'Required', field: `spec.taints[${i}].key` })
        if (isMap(t) && !['NoSchedule', 'PreferNoSchedule', 'NoExecute'].includes(String(t.effect))) errs.push({ type: 'NotSupported', field: `spec.taints[${i}].effect`, value: t.effect ?? '', detail: 'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"' })
      })
    }
    if (old) {
      const oldCidrs = strings((old.spec as JsonMap | undefined)?.podCIDRs)
      if (oldCidrs.length > 0 && (oldCidrs.length !== cidrs.length || oldCidrs.some((c, i) => c !== cidrs[i]))) {
        errs.push({ type: 'Forbidden', field: 'spec.podCIDRs', detail: 'node updates may not change podCIDR except from "" to valid' })
      }
      const oldProvider = (old.spec as JsonMap | undefined)?.providerID
      if (typeof oldProvider === 'string' && oldProvider !== '' && spec.providerID !== oldProvider) {
        errs.push({ type: 'Forbidden', field: 'spec.providerID', detail: 'node updates may not change providerID except from "" to valid' })
      }
    }
    return errs
  },
}

export const PODS: ResourceDef = {
  resource: 'pods',
  kind: 'Pod',
  namespaced: true,
  patchSchema: {
    ...META_PATCH,
    'spec.containers': { strategy: 'merge', mergeKey: 'name' },
    'spec.initContainers': { strategy: 'merge', mergeKey: 'name' },
    'spec.volumes': { strategy: 'merge,retainKeys', mergeKey: 'name' },
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
    'status.podIPs': { strategy: 'merge', mergeKey: 'ip' },
  },
  fieldLabels: ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  fieldValue(obj, label) {
    const [top, field] = label.split('.') as [string, string]
    const v = (obj[top] as JsonMap | undefined)?.[field]
    if (label === 'spec.hostNetwork') return String(v === true)
    return typeof v === 'string' ? v : v === undefined ? '' : String(v)
  },
  normalize(obj, unknown) {
    const out = shaped(obj, POD, '', unknown)
    if (!isMap(out.spec)) out.spec = {}
    if (!isMap(out.status)) out.status = { phase: 'Pending', qosClass: 'BestEffort' }
    return out
  },
  validate(obj, old) {
    const errs = validateMeta(obj, old, true)
    const spec = isMap(obj.spec) ? obj.spec : {}
    if (!Array.isArray(spec.containers) || spec.containers.length === 0) errs.push({ type: 'Required', field: 'spec.containers' })
    if (old) {
      const oldNode = (old.spec as JsonMap).nodeName
      if (typeof oldNode === 'string' && oldNode !== '' && spec.nodeName !== oldNode) errs.push({ type: 'Forbidden', field: 'spec', detail: 'pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations), `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)' })
    }
    return errs
  },
}

/**
 * What a write through the main resource or the status subresource may change: nodes/status keeps
 * the old spec (metadata changes stay), the main resource keeps the old status (the registry strategies).
 */
export function applySubresourceRule(next: JsonMap, old: JsonMap, subresource: 'status' | undefined): JsonMap {
  if (subresource === 'status') return { ...next, spec: old.spec ?? {} }
  return { ...next, status: old.status ?? {} }
}
