import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { HttpKubeApi } from '../../../../src/subnet/kube/http-kube-api.ts'
import { KubeApiError } from '../../../../src/subnet/kube/kube-api.ts'
import { jsonLines } from '../../../../src/subnet/kube/kube-watch-stream.ts'
import type { NodeWatchEvent } from '../../../../src/subnet/kube/kube-types.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { fullNode, json, never, plainConfig, startServer, status } from './kube-test-server.ts'

const line = (type: string, object: unknown): string => `${JSON.stringify({ type, object })}\n`
const describe = (e: NodeWatchEvent): string => (e.type === 'BOOKMARK' ? `BOOKMARK ${e.resourceVersion}` : `${e.type} ${e.object.metadata.name} ${e.object.metadata.resourceVersion}`)

async function* buffers(parts: readonly Buffer[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield p
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const v of it) out.push(v)
  return out
}

test('jsonLines: a boundary inside an event and inside a multi-byte character; several events per chunk', async () => {
  const text = '{"a":"é"}\n{"b":1}\n\n{"c":"日本"}\n'
  const bytes = Buffer.from(text)
  // Every split point, and every pair of split points.
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j += 3) {
      const lines = await collect(jsonLines(buffers([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)])))
      assert.deepEqual(lines, ['{"a":"é"}', '{"b":1}', '{"c":"日本"}'], `split at ${i},${j}`)
    }
  }
  await assert.rejects(collect(jsonLines(buffers([Buffer.from('{"a":1}\n{"b"')]))), /ended in the middle of an event/)
})

/** Writes `parts` one by one with a pause, so each arrives as its own chunk. */
async function dribble(res: ServerResponse, parts: readonly string[]): Promise<void> {
  for (const p of parts) {
    res.write(p)
    await new Promise((r) => setTimeout(r, 5))
  }
}

test('watch: events split across chunks and joined in one, a bookmark, and a clean end', async () => {
  const events = line('ADDED', fullNode('n1', '11')) + line('MODIFIED', fullNode('n1', '12')) + line('BOOKMARK', { kind: 'Node', metadata: { resourceVersion: '13' } }) + line('DELETED', fullNode('n2', '14'))
  const cut1 = events.indexOf('"spec"') // the middle of the first event
  const cut2 = events.indexOf('DELETED') // the bookmark and the start of the last event in one chunk
  const server = await startServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    void dribble(res, [events.slice(0, cut1), events.slice(cut1, cut2), events.slice(cut2)]).then(() => res.end())
  })
  const api = new HttpKubeApi(plainConfig(`${server.url}/p`))
  try {
    const seen = (await collect(api.watchNodes('10', { timeoutSeconds: 30 }, never))).map(describe)
    assert.deepEqual(seen, ['ADDED n1 11', 'MODIFIED n1 12', 'BOOKMARK 13', 'DELETED n2 14'])
    assert.equal(server.requests[0]!.url, '/p/api/v1/nodes?watch=true&resourceVersion=10&allowWatchBookmarks=true&timeoutSeconds=30')
    await collect(api.watchNodes('10', { allowWatchBookmarks: false }, never))
    assert.equal(server.requests[1]!.url, '/p/api/v1/nodes?watch=true&resourceVersion=10')
  } finally {
    api.close()
    await server.close()
  }
})

test('watch: an ERROR event with 410 Expired → REGISTRY_COMPACTED; an error answer → its code', async () => {
  const server = await startServer((req, res) => {
    if (req.url!.includes('resourceVersion=1&')) return json(res, 403, status(403, 'Forbidden', 'nodes is forbidden'))
    res.writeHead(200)
    res.write(line('ADDED', fullNode('n1', '5')))
    res.end(line('ERROR', status(410, 'Expired', 'too old resource version: 2 (5)')))
  })
  const api = new HttpKubeApi(plainConfig(server.url))
  try {
    const seen: string[] = []
    await assert.rejects(
      (async () => { for await (const e of api.watchNodes('2', {}, never)) seen.push(describe(e)) })(),
      (err: unknown) => err instanceof KubeApiError && err.code === 'REGISTRY_COMPACTED' && err.status === 410 && err.reason === 'Expired' &&
        err.message === `kube API ${server.url}: WATCH nodes from 2: ERROR event: 410 Expired: too old resource version: 2 (5)`,
    )
    assert.deepEqual(seen, ['ADDED n1 5'])
    await assert.rejects(collect(api.watchNodes('1', {}, never)), (err: unknown) => err instanceof KubeApiError && err.code === 'REGISTRY_DENIED' && /403 Forbidden/.test(err.message))
  } finally {
    api.close()
    await server.close()
  }
})

test('watch: a malformed event names the field', async () => {
  const server = await startServer((_req, res) => {
    res.writeHead(200)
    res.end(line('ADDED', { metadata: { name: 'n', annotations: { a: 1 } } }))
  })
  const api = new HttpKubeApi(plainConfig(server.url))
  try {
    await assert.rejects(collect(api.watchNodes('1', {}, never)), (err: unknown) => isWeftError(err, 'INVALID_INPUT') && /object\.metadata\.annotations\["a"\]: not a string/.test(err.message))
  } finally {
    api.close()
    await server.close()
  }
})

test('watch: a connection reset mid-stream → REGISTRY_UNAVAILABLE with status 0', async () => {
  const server = await startServer((req, res) => {
    res.writeHead(200)
    res.write(line('ADDED', fullNode('n1', '5')) + '{"type":"MODIFIED","obj')
    setTimeout(() => req.socket.resetAndDestroy(), 20)
  })
  const api = new HttpKubeApi(plainConfig(server.url))
  try {
    const seen: string[] = []
    await assert.rejects(
      (async () => { for await (const e of api.watchNodes('1', {}, never)) seen.push(describe(e)) })(),
      (err: unknown) => err instanceof KubeApiError && err.code === 'REGISTRY_UNAVAILABLE' && err.status === 0 && /the watch stream broke/.test(err.message),
    )
    assert.deepEqual(seen, ['ADDED n1 5'])
  } finally {
    api.close()
    await server.close()
  }
})

test('watch: abort tears the connection down at once and ends the iterator; close() ends watches too', async () => {
  let serverSawClose = (): void => {}
  const closedByClient = new Promise<void>((resolve) => { serverSawClose = resolve })
  const server = await startServer((req, res) => {
    res.writeHead(200)
    res.write(line('ADDED', fullNode('n1', '5')))
    req.socket.on('close', () => serverSawClose())
  })
  const api = new HttpKubeApi(plainConfig(server.url))
  try {
    const ac = new AbortController()
    const it = api.watchNodes('1', {}, ac.signal)[Symbol.asyncIterator]()
    assert.equal(describe((await it.next()).value as NodeWatchEvent), 'ADDED n1 5')
    const waiting = it.next()
    const t0 = Date.now()
    ac.abort()
    assert.deepEqual(await waiting, { done: true, value: undefined })
    await closedByClient
    assert.ok(Date.now() - t0 < 1000)

    const other = api.watchNodes('1', {}, never)[Symbol.asyncIterator]()
    await other.next()
    const pending = other.next()
    api.close()
    await assert.rejects(pending, (err: unknown) => err instanceof KubeApiError && err.status === 0)
  } finally {
    api.close()
    await server.close()
  }
})

test('watch: no byte for timeoutSeconds plus the margin → a dead (half-open) watch, REGISTRY_UNAVAILABLE', async () => {
  const server = await startServer((_req, res) => {
    res.writeHead(200)
    res.flushHeaders()
  })
  const api = new HttpKubeApi(plainConfig(server.url), { watchIdleMarginMs: 200 })
  try {
    const t0 = Date.now()
    await assert.rejects(collect(api.watchNodes('1', { timeoutSeconds: 1 }, never)), (err: unknown) =>
      err instanceof KubeApiError && err.code === 'REGISTRY_UNAVAILABLE' && err.status === 0 && err.reason === 'ETIMEDOUT' && /no data for 1200 ms/.test(err.message))
    const took = Date.now() - t0
    assert.ok(took >= 1150 && took < 3000, `gave up after ${took} ms`)
  } finally {
    api.close()
    await server.close()
  }
})
