/**
 * The Kubernetes API emulator against the API conventions, over raw HTTPS (not weft's client):
 * Status shapes, auth and RBAC, list paging and resourceVersion semantics, writes and
 * preconditions, the three patch types, validation, watches, node IPAM and fault injection.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { request, Agent } from 'node:https'
import { startKubeEmulator, type KubeApiServer } from '../helpers/kube-apiserver.ts'

let k: KubeApiServer
let agent: Agent
const flannel = { token: '' }

before(async () => {
  k = await startKubeEmulator({ tuning: { bookmarkIntervalMs: 100, tooLargeWaitMs: 200 } })
  agent = new Agent({ ca: k.caPem, keepAlive: true })
  flannel.token = k.tokens.flannel
})
after(async () => {
  agent.destroy()
  await k.close()
})

interface Reply { code: number; headers: Record<string, string | string[] | undefined>; text: string; json: any }

function call(method: string, path: string, opts: { token?: string | null; body?: unknown; type?: string; accept?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json, */*', 'user-agent': 'kube-emulator-test/1.0' }
    const token = opts.token === undefined ? k.tokens.admin : opts.token
    if (token !== null) headers.authorization = `Bearer ${token}`
    const body = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body)
    if (body !== undefined) headers['content-type'] = opts.type ?? 'application/json'
    const req = request(`${k.url}${path}`, { method, agent, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        let json: unknown
        try { json = JSON.parse(text) } catch { json = undefined }
        resolve({ code: res.statusCode!, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}


const smp = 'application/strategic-merge-patch+json'

/** Reads watch events until `n` arrived or the stream ended. */
function watch(path: string, n: number | ((events: any[]) => boolean), token = k.tokens.admin): Promise<{ code: number; headers: Record<string, unknown>; events: any[]; ended: boolean; close(): void }> {
  return new Promise((resolve, reject) => {
    const events: any[] = []
    let buf = ''
    const req = request(`${k.url}${path}`, { agent: false, ca: k.caPem, headers: { authorization: `Bearer ${token}`, accept: 'application/json, */*' } }, (res) => {
      const done = (ended: boolean): void => resolve({ code: res.statusCode!, headers: res.headers, events, ended, close: () => req.destroy() })
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        buf += c
        let i: number
        while ((i = buf.indexOf('\n')) >= 0) {
          events.push(JSON.parse(buf.slice(0, i)))
          buf = buf.slice(i + 1)
          if (typeof n === 'number' ? events.length === n : n(events)) done(false)
        }
      })
      res.on('end', () => done(true))
    })
    req.on('error', reject)
    req.end()
  })
}

test('errors are Status objects shaped like the real server: 401, 403, 404, 409, 405, unknown resource', async () => {
  const noToken = await call('GET', '/api/v1/nodes', { token: null })
  assert.equal(noToken.code, 401)
  assert.equal(noToken.text, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}\n')
  assert.equal((await call('GET', '/api/v1/nodes', { token: 'wrong' })).code, 401)

  await k.admin.createNode({ name: 'err-1' })
  const patch = await call('PATCH', '/api/v1/nodes/err-1', { token: flannel.token, body: { metadata: { labels: { a: 'b' } } }, type: smp })
  assert.equal(patch.code, 403)
  assert.deepEqual(patch.json, {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
    message: 'nodes "err-1" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot patch resource "nodes" in API group "" at the cluster scope',
    reason: 'Forbidden', details: { name: 'err-1', kind: 'nodes' }, code: 403,
  })
  const create = await call('POST', '/api/v1/nodes', { token: flannel.token, body: { metadata: { name: 'x' } } })
  assert.equal(create.json.message, 'nodes is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot create resource "nodes" in API group "" at the cluster scope')
  const secrets = await call('GET', '/api/v1/namespaces/kube-system/pods', { token: flannel.token })
  assert.match(secrets.json.message, /cannot list resource "pods" in API group "" in the namespace "kube-system"$/)

  const missing = await call('GET', '/api/v1/nodes/nope')
  assert.equal(missing.text, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \\"nope\\" not found","reason":"NotFound","details":{"name":"nope","kind":"nodes"},"code":404}\n')
  const dup = await call('POST', '/api/v1/nodes', { body: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'err-1' } } })
  assert.equal(dup.code, 409)
  assert.equal(dup.json.reason, 'AlreadyExists')
  assert.equal(dup.json.message, 'nodes "err-1" already exists')
  const unknown = await call('GET', '/api/v1/secrets')
  assert.equal(unknown.code, 404)
  assert.equal(unknown.json.message, 'the server could not find the requested resource')
  assert.equal((await call('POST', '/api/v1/nodes/err-1', { body: {} })).code, 405)
  assert.ok(typeof noToken.headers['audit-id'] === 'string')
})

test('content negotiation: JSON for client-go Accept, 406 for protobuf-only, 415 for an unknown patch type', async () => {
  assert.equal((await call('GET', '/api/v1/nodes', { accept: 'application/json' })).code, 200)
  assert.equal((await call('GET', '/api/v1/nodes', { accept: '*/*' })).code, 200)
  const proto = await call('GET', '/api/v1/nodes', { accept: 'application/vnd.kubernetes.protobuf' })
  assert.equal(proto.code, 406)
  assert.equal(proto.json.reason, 'NotAcceptable')
  await k.admin.createNode({ name: 'neg-1' })
  const bad = await call('PATCH', '/api/v1/nodes/neg-1', { body: '{}', type: 'text/plain' })
  assert.equal(bad.code, 415)
  assert.equal(bad.json.message, 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml')
})

test('discovery, version and health endpoints', async () => {
  assert.equal((await call('GET', '/healthz')).text, 'ok')
  assert.equal((await call('GET', '/readyz')).text, 'ok')
  assert.equal((await call('GET', '/livez')).text, 'ok')
  assert.match((await call('GET', '/version')).json.gitVersion, /^v1\.\d+\.\d+$/)
  assert.deepEqual((await call('GET', '/api')).json.versions, ['v1'])
  const v1 = (await call('GET', '/api/v1', { token: flannel.token })).json
  assert.equal(v1.kind, 'APIResourceList')
  assert.ok(v1.resources.some((r: any) => r.name === 'nodes/status' && r.verbs.includes('patch')))
})

test('list: NodeList shape, items without kind/apiVersion, limit+continue paging with remainingItemCount', async () => {
  for (let i = 0; i < 5; i++) await k.admin.createNode({ name: `page-${i}`, labels: { group: 'paging' } })
  const all = await call('GET', '/api/v1/nodes?labelSelector=group%3Dpaging', { token: flannel.token })
  assert.equal(all.json.kind, 'NodeList')
  assert.equal(all.json.apiVersion, 'v1')
  assert.match(all.json.metadata.resourceVersion, /^\d+$/)
  assert.deepEqual(all.json.items.map((n: any) => n.metadata.name), ['page-0', 'page-1', 'page-2', 'page-3', 'page-4'])
  assert.equal(all.json.items[0].kind, undefined)
  assert.equal(all.json.items[0].apiVersion, undefined)

  const total = (await call('GET', '/api/v1/nodes')).json.items.length
  const first = await call('GET', '/api/v1/nodes?limit=2')
  assert.equal(first.json.items.length, 2)
  assert.equal(first.json.metadata.remainingItemCount, total - 2)
  assert.ok(first.json.metadata.continue)
  // A write between pages does not show: the continuation reads the first page's revision.
  await k.admin.createNode({ name: 'aaa-late' })
  const names: string[] = first.json.items.map((n: any) => n.metadata.name)
  let cont = first.json.metadata.continue
  while (cont) {
    const page = await call('GET', `/api/v1/nodes?limit=2&continue=${encodeURIComponent(cont)}`)
    assert.equal(page.code, 200)
    assert.equal(page.json.metadata.resourceVersion, first.json.metadata.resourceVersion)
    names.push(...page.json.items.map((n: any) => n.metadata.name))
    cont = page.json.metadata.continue
  }
  assert.equal(names.length, total)
  assert.ok(!names.includes('aaa-late'))
  assert.deepEqual(names, [...names].sort())

  const withRv = await call('GET', `/api/v1/nodes?limit=2&resourceVersion=5&continue=${encodeURIComponent(first.json.metadata.continue)}`)
  assert.equal(withRv.code, 400)
  assert.equal(withRv.json.message, 'specifying resource version is not allowed when using continue')
  // client-go's reflector: resourceVersion=0 is served from the cache, the limit ignored.
  const cached = await call('GET', '/api/v1/nodes?limit=2&resourceVersion=0')
  assert.equal(cached.json.items.length, total + 1)
  assert.equal(cached.json.metadata.continue, undefined)
})

test('list: expired continue token and compacted exact resourceVersion answer 410 Expired', async () => {
  await k.admin.createNode({ name: 'exp-1' })
  await k.admin.createNode({ name: 'exp-2' })
  const first = await call('GET', '/api/v1/nodes?limit=1')
  const oldRv = first.json.metadata.resourceVersion
  const exact = await call('GET', `/api/v1/nodes?resourceVersion=${oldRv}&resourceVersionMatch=Exact`)
  assert.equal(exact.code, 200)
  await k.admin.createNode({ name: 'exp-3' })
  await k.admin.compact()
  const gone = await call('GET', `/api/v1/nodes?limit=1&continue=${encodeURIComponent(first.json.metadata.continue)}`)
  assert.equal(gone.code, 410)
  assert.equal(gone.json.reason, 'Expired')
  assert.match(gone.json.message, /^The provided continue parameter is too old to display a consistent list result\./)
  assert.ok(gone.json.metadata.continue, 'a token to continue inconsistently')
  const old = await call('GET', `/api/v1/nodes?resourceVersion=${oldRv}&resourceVersionMatch=Exact`)
  assert.equal(old.code, 410)
  assert.equal(old.json.message, 'The resourceVersion for the provided list is too old.')
})

test('list: resourceVersion semantics, selectors and ListOptions validation', async () => {
  const rv = Number((await call('GET', '/api/v1/nodes')).json.metadata.resourceVersion)
  const notOlder = await call('GET', `/api/v1/nodes?resourceVersion=${rv}&resourceVersionMatch=NotOlderThan`)
  assert.equal(notOlder.code, 200)
  assert.ok(Number(notOlder.json.metadata.resourceVersion) >= rv)
  const future = await call('GET', `/api/v1/nodes?resourceVersion=${rv + 1000}&resourceVersionMatch=NotOlderThan`)
  assert.equal(future.code, 504)
  assert.equal(future.json.message, `Too large resource version: ${rv + 1000}, current: ${rv}`)
  const noRv = await call('GET', '/api/v1/nodes?resourceVersionMatch=Exact')
  assert.equal(noRv.code, 422)
  assert.equal(noRv.json.message, 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided')
  assert.equal((await call('GET', '/api/v1/nodes?resourceVersion=abc')).code, 400)

  await k.admin.createNode({ name: 'sel-1', labels: { role: 'x' } })
  const byName = await call('GET', '/api/v1/nodes?fieldSelector=metadata.name%3Dsel-1', { token: flannel.token })
  assert.deepEqual(byName.json.items.map((n: any) => n.metadata.name), ['sel-1'])
  const badField = await call('GET', '/api/v1/nodes?fieldSelector=spec.podCIDR%3Dx')
  assert.equal(badField.code, 400)
  assert.equal(badField.json.message, 'field label not supported: spec.podCIDR')
  const notIn = await call('GET', '/api/v1/nodes?labelSelector=role%20notin%20(x),group')
  assert.ok(notIn.json.items.every((n: any) => n.metadata.labels?.group !== undefined && n.metadata.labels?.role !== 'x'))
})

test('writes: global resourceVersion, PUT precondition conflict, status rules, no-op patch, DELETE', async () => {
  const created = await call('POST', '/api/v1/nodes', { body: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'w-1' }, spec: { podCIDR: '10.9.1.0/24' } } })
  assert.equal(created.code, 201)
  const n = created.json
  assert.equal(n.kind, 'Node')
  assert.match(n.metadata.uid, /^[0-9a-f-]{36}$/)
  assert.match(n.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
  assert.deepEqual(n.spec.podCIDRs, ['10.9.1.0/24'])
  const rv = Number(n.metadata.resourceVersion)
  await k.admin.createNode({ name: 'w-other' })
  assert.equal(await k.admin.resourceVersion(), rv + 1)

  const stale = { ...n, metadata: { ...n.metadata, labels: { a: '1' } } }
  const put = await call('PUT', '/api/v1/nodes/w-1', { body: stale })
  assert.equal(put.code, 200)
  assert.equal(put.json.metadata.resourceVersion, String(rv + 2))
  const conflict = await call('PUT', '/api/v1/nodes/w-1', { body: stale })
  assert.equal(conflict.code, 409)
  assert.equal(conflict.json.reason, 'Conflict')
  assert.equal(conflict.json.message, 'Operation cannot be fulfilled on nodes "w-1": the object has been modified; please apply your changes to the latest version and try again')

  // The main resource ignores status; nodes/status ignores spec but keeps metadata.
  const viaMain = await call('PATCH', '/api/v1/nodes/w-1', { body: { status: { phase: 'Running' }, metadata: { labels: { b: '2' } } }, type: smp })
  assert.equal(viaMain.json.status.phase, undefined)
  assert.equal(viaMain.json.metadata.labels.b, '2')
  const viaStatus = await call('PATCH', '/api/v1/nodes/w-1/status', { token: flannel.token, body: { spec: { unschedulable: true }, metadata: { annotations: { 'flannel.alpha.coreos.com/public-ip': '10.0.0.9' } } }, type: smp })
  assert.equal(viaStatus.code, 200)
  assert.equal(viaStatus.json.spec.unschedulable, undefined)
  assert.equal(viaStatus.json.metadata.annotations['flannel.alpha.coreos.com/public-ip'], '10.0.0.9')

  const before = await k.admin.resourceVersion()
  const noop = await call('PATCH', '/api/v1/nodes/w-1/status', { token: flannel.token, body: { metadata: { annotations: { 'flannel.alpha.coreos.com/public-ip': '10.0.0.9' } } }, type: smp })
  assert.equal(noop.json.metadata.resourceVersion, viaStatus.json.metadata.resourceVersion)
  assert.equal(await k.admin.resourceVersion(), before)

  const rvPrecondition = await call('PATCH', '/api/v1/nodes/w-1', { body: { metadata: { resourceVersion: '1', labels: { c: '3' } } }, type: smp })
  assert.equal(rvPrecondition.code, 409)

  const del = await call('DELETE', '/api/v1/nodes/w-1')
  assert.equal(del.code, 200)
  assert.equal(del.json.kind, 'Status')
  assert.equal(del.json.status, 'Success')
  assert.deepEqual(del.json.details, { name: 'w-1', kind: 'nodes', uid: n.metadata.uid })
  assert.equal((await call('GET', '/api/v1/nodes/w-1')).code, 404)
})

test('strategic merge patch: conditions and addresses merge by type, null deletes, directives', async () => {
  await k.admin.createNode({
    name: 'smp-1', labels: { keep: 'y', drop: 'y' },
    conditions: [{ type: 'Ready', status: 'True' }, { type: 'MemoryPressure', status: 'False' }],
    addresses: [{ type: 'InternalIP', address: '10.0.0.1' }, { type: 'Hostname', address: 'smp-1' }],
  })
  const p = (body: unknown, type = smp, path = '/api/v1/nodes/smp-1/status'): Promise<Reply> => call('PATCH', path, { body, type })
  const merged = (await p({ metadata: { labels: { drop: null, add: 'z' } }, status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp' }, { type: 'Ready', status: 'False' }] } })).json
  assert.deepEqual(merged.metadata.labels, { keep: 'y', add: 'z' })
  // strategicpatch's order: patch items in patch order, interleaved with server-only items by their old position.
  assert.deepEqual(merged.status.conditions.map((c: any) => `${c.type}=${c.status}`), ['MemoryPressure=False', 'NetworkUnavailable=False', 'Ready=False'])
  const ordered = (await p({ status: { '$setElementOrder/conditions': [{ type: 'NetworkUnavailable' }, { type: 'Ready' }, { type: 'MemoryPressure' }] } })).json
  assert.deepEqual(ordered.status.conditions.map((c: any) => c.type), ['NetworkUnavailable', 'Ready', 'MemoryPressure'])
  const deleted = (await p({ status: { conditions: [{ type: 'MemoryPressure', $patch: 'delete' }] } })).json
  assert.deepEqual(deleted.status.conditions.map((c: any) => c.type), ['NetworkUnavailable', 'Ready'])
  const replaced = (await p({ status: { addresses: [{ $patch: 'replace' }, { type: 'InternalIP', address: '10.0.0.2' }] } })).json
  assert.deepEqual(replaced.status.addresses, [{ type: 'InternalIP', address: '10.0.0.2' }])
  const mapReplace = (await p({ metadata: { labels: { $patch: 'replace', only: 'one' } } })).json
  assert.deepEqual(mapReplace.metadata.labels, { only: 'one' })
  const noKey = await p({ status: { conditions: [{ status: 'True' }] } })
  assert.equal(noKey.code, 500)
  assert.match(noKey.json.message, /does not contain declared merge key: type$/)
})

test('merge patch replaces lists; JSON patch ops; malformed bodies are 400, failed test 422', async () => {
  await k.admin.createNode({ name: 'mp-1', conditions: [{ type: 'Ready', status: 'True' }, { type: 'MemoryPressure', status: 'False' }] })
  const merge = await call('PATCH', '/api/v1/nodes/mp-1/status', { body: { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False' }] } }, type: 'application/merge-patch+json' })
  assert.deepEqual(merge.json.status.conditions.map((c: any) => c.type), ['NetworkUnavailable'])
  const jp = await call('PATCH', '/api/v1/nodes/mp-1', {
    body: [{ op: 'add', path: '/metadata/labels', value: {} }, { op: 'add', path: '/metadata/labels/x~1y', value: 'v' }, { op: 'copy', from: '/metadata/labels/x~1y', path: '/metadata/labels/z' }, { op: 'test', path: '/metadata/labels/z', value: 'v' }, { op: 'remove', path: '/metadata/labels/z' }],
    type: 'application/json-patch+json',
  })
  assert.equal(jp.code, 200)
  assert.deepEqual(jp.json.metadata.labels, { 'x/y': 'v' })
  const failed = await call('PATCH', '/api/v1/nodes/mp-1', { body: [{ op: 'test', path: '/metadata/name', value: 'other' }], type: 'application/json-patch+json' })
  assert.equal(failed.code, 422)
  assert.equal(failed.json.reason, 'Invalid')
  assert.equal(failed.json.message, 'the server rejected our request due to an error in our request')
  const malformed = await call('PATCH', '/api/v1/nodes/mp-1', { body: '{"metadata":', type: smp })
  assert.equal(malformed.code, 400)
  assert.equal(malformed.json.reason, 'BadRequest')
  assert.equal((await call('PATCH', '/api/v1/nodes/absent', { body: {}, type: smp })).code, 404)
})

test('validation: invalid podCIDR, podCIDRs immutable once set, dual stack rules, bad names → 422 with causes', async () => {
  await k.admin.createNode({ name: 'val-1' })
  const bad = await call('PATCH', '/api/v1/nodes/val-1', { body: { spec: { podCIDR: 'not-a-cidr' } }, type: smp })
  assert.equal(bad.code, 422)
  assert.equal(bad.json.message, 'Node "val-1" is invalid: spec.podCIDRs[0]: Invalid value: []string{"not-a-cidr"}: must be valid CIDR')
  assert.deepEqual(bad.json.details, { name: 'val-1', kind: 'Node', causes: [{ reason: 'FieldValueInvalid', message: 'Invalid value: []string{"not-a-cidr"}: must be valid CIDR', field: 'spec.podCIDRs[0]' }] })
  assert.equal((await call('PATCH', '/api/v1/nodes/val-1', { body: { spec: { podCIDR: '10.1.0.0/24' } }, type: smp })).code, 200)
  const change = await call('PATCH', '/api/v1/nodes/val-1', { body: { spec: { podCIDR: '10.2.0.0/24', podCIDRs: ['10.2.0.0/24'] } }, type: 'application/merge-patch+json' })
  assert.equal(change.code, 422)
  assert.equal(change.json.message, 'Node "val-1" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid')
  const twoV4 = await call('POST', '/api/v1/nodes', { body: { metadata: { name: 'val-2' }, spec: { podCIDRs: ['10.3.0.0/24', '10.4.0.0/24'] } } })
  assert.equal(twoV4.code, 422)
  assert.match(twoV4.json.message, /may specify no more than one CIDR for each IP family/)
  const dual = await call('POST', '/api/v1/nodes', { body: { metadata: { name: 'val-3' }, spec: { podCIDRs: ['10.5.0.0/24', 'fd00:5::/64'] } } })
  assert.equal(dual.code, 201)
  assert.equal(dual.json.spec.podCIDR, '10.5.0.0/24')
  const badName = await call('POST', '/api/v1/nodes', { body: { metadata: { name: 'Bad_Name' } } })
  assert.equal(badName.code, 422)
  assert.equal(badName.json.details.causes[0].field, 'metadata.name')
  const unknown = await call('PATCH', '/api/v1/nodes/val-1', { body: { spec: { bogus: 1 } }, type: smp })
  assert.equal(unknown.code, 200)
  assert.equal(unknown.json.spec.bogus, undefined)
  assert.equal(unknown.headers.warning, `299 - "unknown field \\"spec.bogus\\""`)
})

test('pods: get by namespace/name with spec.nodeName; flannel may get but not list', async () => {
  await k.admin.createPod('kube-flannel', 'kube-flannel-ds-abc', 'node-a')
  const pod = await call('GET', '/api/v1/namespaces/kube-flannel/pods/kube-flannel-ds-abc', { token: flannel.token })
  assert.equal(pod.code, 200)
  assert.equal(pod.json.kind, 'Pod')
  assert.equal(pod.json.metadata.namespace, 'kube-flannel')
  assert.equal(pod.json.spec.nodeName, 'node-a')
  assert.equal((await call('GET', '/api/v1/namespaces/other/pods/kube-flannel-ds-abc', { token: flannel.token })).code, 404)
  assert.equal((await call('GET', '/api/v1/namespaces/kube-flannel/pods', { token: flannel.token })).code, 403)
})

test('watch: initial ADDED, live events after N, DELETED with the last state, bookmarks only when asked', async () => {
  await k.admin.createNode({ name: 'wa-1', labels: { w: 'a' } })
  const initial = await watch('/api/v1/nodes?watch=true&labelSelector=w%3Da', 1, flannel.token)
  assert.equal(initial.code, 200)
  assert.equal(initial.headers['content-type'], 'application/json')
  assert.equal(initial.events[0].type, 'ADDED')
  assert.equal(initial.events[0].object.kind, 'Node')
  assert.equal(initial.events[0].object.apiVersion, 'v1')
  initial.close()

  const rv = await k.admin.resourceVersion()
  const live = watch(`/api/v1/nodes?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dwa-1`, (evs) => evs.some((e) => e.type === 'DELETED'), flannel.token)
  await new Promise((r) => setTimeout(r, 150)) // at least one bookmark (interval 100 ms) before the writes
  await k.admin.patchNode('wa-1', { metadata: { annotations: { a: '1' } } })
  await k.admin.createNode({ name: 'wa-unrelated' })
  await k.admin.deleteNode('wa-1')
  const got = await live
  got.close()
  const real = got.events.filter((e) => e.type !== 'BOOKMARK')
  assert.deepEqual(real.map((e) => e.type), ['MODIFIED', 'DELETED'])
  assert.equal(real[1].object.metadata.annotations.a, '1', 'DELETED carries the last state')
  assert.equal(Number(real[1].object.metadata.resourceVersion), await k.admin.resourceVersion(), '... at the revision of the delete')
  const bm = got.events.find((e) => e.type === 'BOOKMARK')
  assert.ok(bm, 'bookmarks were asked for')
  assert.deepEqual(Object.keys(bm.object), ['kind', 'apiVersion', 'metadata'])
  assert.deepEqual(Object.keys(bm.object.metadata), ['resourceVersion'])

  const quiet = await watch(`/api/v1/nodes?watch=true&resourceVersion=${await k.admin.resourceVersion()}&timeoutSeconds=1`, 1)
  assert.deepEqual(quiet.events, [], 'no bookmarks without allowWatchBookmarks')

  const withBookmarks = await watch(`/api/v1/nodes?watch=true&resourceVersion=${await k.admin.resourceVersion()}&allowWatchBookmarks=true`, 1)
  assert.equal(withBookmarks.events[0].type, 'BOOKMARK')
  assert.deepEqual(withBookmarks.events[0].object, { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(await k.admin.resourceVersion()) } })
  withBookmarks.close()
})

test('watch: ends at timeoutSeconds; too old resourceVersion is 200 then an ERROR 410 event', async () => {
  const t0 = Date.now()
  const short = await watch(`/api/v1/nodes?watch=true&resourceVersion=${await k.admin.resourceVersion()}&timeoutSeconds=1`, 1)
  assert.equal(short.ended, true)
  assert.ok(Date.now() - t0 >= 900)
  assert.deepEqual(short.events, [])

  await k.admin.createNode({ name: 'old-1' })
  const oldRv = (await k.admin.resourceVersion()) - 1
  const compactedAt = await k.admin.compact()
  const tooOld = await watch(`/api/v1/nodes?watch=true&resourceVersion=${oldRv}`, 1)
  assert.equal(tooOld.code, 200)
  assert.deepEqual(tooOld.events[0], {
    type: 'ERROR',
    object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${oldRv} (${compactedAt})`, reason: 'Expired', code: 410 },
  })
  tooOld.close()
})

test('watch: a slow watcher does not hold back a fast one; closeWatches ends streams', async () => {
  const rv = await k.admin.resourceVersion()
  const fast = watch(`/api/v1/nodes?watch=true&resourceVersion=${rv}`, 200)
  // The slow one never reads: its socket is paused.
  const slowReq = request(`${k.url}/api/v1/nodes?watch=true&resourceVersion=${rv}`, { agent: false, ca: k.caPem, headers: { authorization: `Bearer ${k.tokens.admin}` } }, (res) => res.pause())
  slowReq.end()
  await new Promise((r) => setTimeout(r, 50))
  await k.admin.createNodes(Array.from({ length: 200 }, (_, i) => ({ name: `fan-${String(i).padStart(3, '0')}`, annotations: { pad: 'x'.repeat(2000) } })))
  const got = await fast
  assert.equal(got.events.length, 200)
  assert.ok(got.events.every((e) => e.type === 'ADDED'))
  got.close()
  assert.ok((await k.admin.watchCount()) >= 1)
  const ended = watch(`/api/v1/nodes?watch=true&resourceVersion=${await k.admin.resourceVersion()}`, 1)
  await new Promise((r) => setTimeout(r, 50))
  assert.ok((await k.admin.closeWatches()) >= 1)
  assert.equal((await ended).ended, true)
  slowReq.destroy()
})

test('faults: next requests answered 429 with Retry-After / 500, then normal; down and up on the same address', async () => {
  await k.admin.failNext({ code: 429, count: 2, retryAfterSeconds: 3 })
  const a = await call('GET', '/api/v1/nodes')
  assert.equal(a.code, 429)
  assert.equal(a.headers['retry-after'], '3')
  assert.equal(a.json.reason, 'TooManyRequests')
  assert.equal(a.json.details.retryAfterSeconds, 3)
  assert.equal((await call('GET', '/api/v1/nodes')).code, 429)
  assert.equal((await call('GET', '/api/v1/nodes')).code, 200)
  await k.admin.failNext({ code: 500, verb: 'patch' })
  assert.equal((await call('GET', '/api/v1/nodes')).code, 200)
  await k.admin.createNode({ name: 'fault-1' })
  const e500 = await call('PATCH', '/api/v1/nodes/fault-1', { body: {}, type: smp })
  assert.equal(e500.code, 500)
  assert.equal(e500.json.reason, 'InternalError')

  await k.admin.down()
  await assert.rejects(call('GET', '/healthz'), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET')
  await k.admin.up()
  assert.equal((await call('GET', '/healthz')).code, 200)
})

test('request counters by verb and resource', async () => {
  await k.admin.resetRequestCounts()
  await call('GET', '/api/v1/nodes', { token: flannel.token })
  await call('GET', '/api/v1/nodes?limit=500&resourceVersion=0', { token: flannel.token })
  await call('GET', '/api/v1/nodes/fault-1', { token: flannel.token })
  await call('PATCH', '/api/v1/nodes/fault-1/status', { token: flannel.token, body: {}, type: smp })
  assert.deepEqual(await k.admin.requestCounts(), { 'get nodes': 1, 'list nodes': 2, 'patch nodes/status': 1 })
})

test('token rotation: the old token is revoked, the token file holds the new one', async () => {
  const file = k.tokenFile('flannel')
  const old = k.tokens.flannel
  const fresh = await k.admin.rotateToken()
  assert.notEqual(fresh, old)
  assert.equal(k.tokens.flannel, fresh)
  assert.equal((await call('GET', '/api/v1/nodes', { token: old })).code, 401)
  assert.equal((await call('GET', '/api/v1/nodes', { token: fresh })).code, 200)
  const { readFileSync } = await import('node:fs')
  assert.equal(readFileSync(file, 'utf8'), fresh)
  flannel.token = fresh
  const cfg = readFileSync(k.kubeconfig({ user: 'flannel' }), 'utf8')
  assert.match(cfg, /^apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority: ".*ca\.crt"\n    server: https:\/\/127\.0\.0\.1:\d+\n  name: weft-test\n/)
  assert.match(cfg, new RegExp(`    token: "${fresh}"\n$`))
  assert.match(cfg, /current-context: flannel@weft-test\nkind: Config\n/)
})
