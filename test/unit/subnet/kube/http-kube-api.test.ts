import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HttpKubeApi, createKubeApi } from '../../../../src/subnet/kube/http-kube-api.ts'
import { KubeApiError } from '../../../../src/subnet/kube/kube-api.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { VERSION } from '../../../../src/cli/version.ts'
import { fullNode, json, never, plainConfig, startServer, status } from './kube-test-server.ts'

const apiError = (code: string, statusCode: number, re?: RegExp) => (err: unknown) =>
  err instanceof KubeApiError && err.code === code && err.status === statusCode && (re === undefined || re.test(err.message))

test('getNode: path under the URL prefix, headers, and only the fields weft reads', async () => {
  const server = await startServer((_req, res) => json(res, 200, fullNode('node a', '42', { 'flannel.alpha.coreos.com/public-ip': '192.168.1.10' })))
  const api = new HttpKubeApi(plainConfig(`${server.url}/k8s`, { auth: { kind: 'token', token: 's3cret' } }))
  try {
    const node = await api.getNode('node a', never)
    assert.deepEqual(node, {
      metadata: { name: 'node a', uid: 'uid-node a', resourceVersion: '42', annotations: { 'flannel.alpha.coreos.com/public-ip': '192.168.1.10' } },
      spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'] },
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok', lastHeartbeatTime: '2024-01-01T00:00:00Z', lastTransitionTime: '2024-01-01T00:00:00Z' }] },
    })
    const seen = server.requests[0]!
    assert.equal(seen.method, 'GET')
    assert.equal(seen.url, '/k8s/api/v1/nodes/node%20a')
    assert.equal(seen.headers['accept'], 'application/json')
    assert.equal(seen.headers['user-agent'], `weft/${VERSION}`)
    assert.equal(seen.headers['authorization'], 'Bearer s3cret')
  } finally {
    api.close()
    await server.close()
  }
})

test('getPod, listNodes query and paging, patchNodeStatus content types; one kept-alive connection', async () => {
  const server = await startServer((req, res, body) => {
    if (req.url!.startsWith('/api/v1/namespaces/')) return json(res, 200, { kind: 'Pod', metadata: { name: 'p1', namespace: 'kube-flannel' }, spec: { nodeName: 'n1', containers: [{}] } })
    if (req.method === 'PATCH') return json(res, 200, fullNode('n1', '7', JSON.parse(body).metadata.annotations))
    json(res, 200, { kind: 'NodeList', metadata: { resourceVersion: '99', continue: req.url!.includes('continue') ? '' : 'tok' }, items: [fullNode('n1'), fullNode('n2')] })
  })
  const api = new HttpKubeApi(plainConfig(server.url))
  try {
    assert.deepEqual(await api.getPod('kube-flannel', 'p1', never), { metadata: { name: 'p1', namespace: 'kube-flannel' }, spec: { nodeName: 'n1' } })
    const page1 = await api.listNodes({ limit: 500, resourceVersion: '0' }, never)
    assert.deepEqual([page1.resourceVersion, page1.continue, page1.items.map((n) => n.metadata.name)], ['99', 'tok', ['n1', 'n2']])
    const page2 = await api.listNodes({ limit: 500, continue: 'tok' }, never)
    assert.equal(page2.continue, undefined)
    await api.listNodes({}, never)
    const patched = await api.patchNodeStatus('n1', { metadata: { annotations: { a: 'b' } } }, 'strategic', never)
    assert.deepEqual(patched.metadata.annotations, { a: 'b' })
    await api.patchNodeStatus('n1', { metadata: { annotations: { a: 'c' } } }, 'merge', never)
    const r = server.requests
    assert.equal(r[0]!.url, '/api/v1/namespaces/kube-flannel/pods/p1')
    assert.equal(r[1]!.url, '/api/v1/nodes?limit=500&resourceVersion=0')
    assert.equal(r[2]!.url, '/api/v1/nodes?limit=500&continue=tok')
    assert.equal(r[3]!.url, '/api/v1/nodes')
    assert.deepEqual([r[4]!.method, r[4]!.url, r[4]!.headers['content-type']], ['PATCH', '/api/v1/nodes/n1/status', 'application/strategic-merge-patch+json'])
    assert.equal(r[5]!.headers['content-type'], 'application/merge-patch+json')
    assert.equal(r[5]!.body, '{"metadata":{"annotations":{"a":"c"}}}')
    assert.equal(server.connections, 1)
  } finally {
    api.close()
    await server.close()
  }
})

test('malformed answers: a WeftError naming the field, never a TypeError', async () => {
  let answer: unknown
  const server = await startServer((_req, res) => (typeof answer === 'string' ? res.end(answer) : json(res, 200, answer)))
  const api = new HttpKubeApi(plainConfig(server.url))
  const malformed = (re: RegExp) => (err: unknown) => isWeftError(err, 'INVALID_INPUT') && re.test(err.message)
  try {
    const cases: [unknown, () => Promise<unknown>, RegExp][] = [
      [{ metadata: { resourceVersion: '1' }, items: {} }, () => api.listNodes({}, never), /GET nodes: malformed answer: items: not an array/],
      [{ metadata: { resourceVersion: '1' }, items: [fullNode('a'), { metadata: { name: 5 } }] }, () => api.listNodes({}, never), /items\[1\]\.metadata\.name: not a non-empty string/],
      [{ items: [] }, () => api.listNodes({}, never), /metadata\.resourceVersion: missing/],
      [{ metadata: { name: 'n', annotations: { ok: 'x', bad: 3 } } }, () => api.getNode('n', never), /GET nodes\/n: malformed answer: metadata\.annotations\["bad"\]: not a string/],
      [{ metadata: { name: 'n' }, spec: { podCIDRs: ['a', null] } }, () => api.getNode('n', never), /spec\.podCIDRs\[1\]: not a string/],
      [{ metadata: { name: 'n' }, status: { conditions: [{ status: 'True' }] } }, () => api.getNode('n', never), /status\.conditions\[0\]\.type: missing/],
      [[1, 2], () => api.getNode('n', never), /answer: not an object/],
      ['<html>ok</html>', () => api.getNode('n', never), /the answer is not JSON: ok/],
    ]
    for (const [body, call, re] of cases) {
      answer = body
      await assert.rejects(call(), malformed(re), String(re))
    }
  } finally {
    api.close()
    await server.close()
  }
})

test('error answers: Status message, codes, Retry-After, non-Status bodies', async () => {
  const server = await startServer((req, res) => {
    if (req.url === '/api/v1/nodes/n1') return json(res, 401, status(401, 'Unauthorized', 'Unauthorized'))
    if (req.url === '/api/v1/nodes/n2') return json(res, 403, status(403, 'Forbidden', 'nodes "n2" is forbidden: User "x" cannot get resource "nodes"'))
    if (req.url === '/api/v1/nodes/n3') return json(res, 404, status(404, 'NotFound', 'nodes "n3" not found'))
    if (req.url === '/api/v1/nodes/n4') return json(res, 429, status(429, 'TooManyRequests', 'too many requests, please try again later'), { 'retry-after': '7' })
    res.writeHead(502, { 'content-type': 'text/html' })
    res.end('<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>')
  })
  const api = new HttpKubeApi(plainConfig(server.url))
  try {
    await assert.rejects(api.getNode('n1', never), (err: unknown) => {
      assert.ok(err instanceof KubeApiError)
      assert.equal(err.message, `kube API ${server.url}: GET nodes/n1: 401 Unauthorized: Unauthorized`)
      assert.deepEqual([err.code, err.status, err.reason], ['REGISTRY_DENIED', 401, 'Unauthorized'])
      return true
    })
    await assert.rejects(api.getNode('n2', never), apiError('REGISTRY_DENIED', 403, /403 Forbidden: nodes "n2" is forbidden/))
    await assert.rejects(api.getNode('n3', never), apiError('REGISTRY_NOT_FOUND', 404, /GET nodes\/n3: 404 NotFound: nodes "n3" not found$/))
    await assert.rejects(api.getNode('n4', never), (err: unknown) => apiError('REGISTRY_UNAVAILABLE', 429)(err) && (err as KubeApiError).retryAfterSeconds === 7)
    await assert.rejects(api.getNode('n5', never), apiError('REGISTRY_UNAVAILABLE', 502, /GET nodes\/n5: 502 Bad Gateway: 502 Bad Gateway nginx$/))
  } finally {
    api.close()
    await server.close()
  }
})

test('unreachable server, request timeout and abort', async () => {
  const closed = await startServer(() => {})
  await closed.close()
  const down = new HttpKubeApi(plainConfig(closed.url))
  await assert.rejects(down.getNode('n', never), (err: unknown) => apiError('REGISTRY_UNAVAILABLE', 0, /GET nodes\/n: .*ECONNREFUSED/)(err) && (err as KubeApiError).reason === 'ECONNREFUSED')
  down.close()

  const silent = await startServer(() => { /* never answers */ })
  const api = new HttpKubeApi(plainConfig(silent.url), { requestTimeoutMs: 150 })
  try {
    await assert.rejects(api.getNode('n', never), (err: unknown) => apiError('REGISTRY_UNAVAILABLE', 0, /no answer within 150 ms/)(err) && (err as KubeApiError).reason === 'ETIMEDOUT')
    const ac = new AbortController()
    const pending = api.listNodes({}, ac.signal)
    setTimeout(() => ac.abort(new Error('stop')), 20)
    await assert.rejects(pending, /stop/)
    await assert.rejects(api.getNode('n', ac.signal), /stop/)
  } finally {
    api.close()
    await silent.close()
  }
})

test('token file: a rotated token is picked up before the next request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-token-'))
  let accepted = 'old'
  const server = await startServer((req, res) =>
    req.headers['authorization'] === `Bearer ${accepted}` ? json(res, 200, fullNode('n')) : json(res, 401, status(401, 'Unauthorized', 'Unauthorized')))
  const path = join(dir, 'token')
  writeFileSync(path, 'old\n')
  const api = new HttpKubeApi(plainConfig(server.url, { auth: { kind: 'tokenFile', path, token: 'old' } }), { tokenRecheckMs: 0 })
  try {
    await api.getNode('n', never)
    // The kubelet swaps the file atomically (a new inode).
    writeFileSync(`${path}.tmp`, 'new\n')
    renameSync(`${path}.tmp`, path)
    accepted = 'new'
    await api.getNode('n', never)
    assert.deepEqual(server.requests.map((r) => r.headers['authorization']), ['Bearer old', 'Bearer new'])
  } finally {
    api.close()
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('token file: a 401 re-reads the file and retries once; a static token is not retried', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-token-'))
  const server = await startServer((req, res) =>
    req.headers['authorization'] === 'Bearer new' ? json(res, 200, fullNode('n')) : json(res, 401, status(401, 'Unauthorized', 'Unauthorized')))
  const path = join(dir, 'token')
  writeFileSync(path, 'old')
  // Rechecks far apart: only the 401 can make the client look at the file again.
  const api = new HttpKubeApi(plainConfig(server.url, { auth: { kind: 'tokenFile', path, token: 'old' } }), { tokenRecheckMs: 3_600_000 })
  const fixed = new HttpKubeApi(plainConfig(server.url, { auth: { kind: 'token', token: 'old' } }))
  try {
    await api.getNode('n', never) // the first request stats the file once
      .then(() => assert.fail('the old token was accepted'), (err: unknown) => assert.ok(apiError('REGISTRY_DENIED', 401)(err)))
    writeFileSync(path, 'new')
    assert.equal((await api.getNode('n', never)).metadata.name, 'n')
    assert.deepEqual(server.requests.map((r) => r.headers['authorization']), ['Bearer old', 'Bearer old', 'Bearer new'])
    server.requests.length = 0
    await assert.rejects(fixed.getNode('n', never), apiError('REGISTRY_DENIED', 401))
    assert.equal(server.requests.length, 1)
  } finally {
    api.close()
    fixed.close()
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('basic auth header', async () => {
  const server = await startServer((_req, res) => json(res, 200, fullNode('n')))
  const api = new HttpKubeApi(plainConfig(server.url, { auth: { kind: 'basic', username: 'bob', password: 'pw' } }))
  try {
    await api.getNode('n', never)
    assert.equal(server.requests[0]!.headers['authorization'], `Basic ${Buffer.from('bob:pw').toString('base64')}`)
  } finally {
    api.close()
    await server.close()
  }
})

test('node:https and tls are loaded only for an https server', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'lazy-https-probe.ts')], { encoding: 'utf8' })
  const [afterHttp, afterHttps] = out.trim().split('\n').map((l) => JSON.parse(l) as string[])
  assert.deepEqual(afterHttp, [])
  assert.ok(afterHttps!.includes('NativeModule https'), out)
})

test('createKubeApi: the flags resolved and a client for them', async () => {
  const server = await startServer((_req, res) => json(res, 200, fullNode('n')))
  const { api, config } = createKubeApi({ kubeApiUrl: server.url, kubeconfigFile: '', env: {} })
  try {
    assert.equal(api.server, server.url)
    assert.match(config.warnings.join(), /without credentials/)
    assert.equal((await api.getNode('n', never)).metadata.name, 'n')
  } finally {
    api.close()
    await server.close()
  }
})
