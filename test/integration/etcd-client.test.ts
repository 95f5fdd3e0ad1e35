/**
 * EtcdClient transport behaviour against scripted loopback HTTP servers: timeouts, failover
 * rules, split NDJSON watch messages, idle watches, and abort.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { EtcdClient } from '../../src/subnet/etcd/etcd-client.ts'
import { silentLogger } from '../../src/log/logger.ts'
import { isWeftError } from '../../src/errors.ts'

const servers: Server[] = []
after(() => { for (const s of servers) s.closeAllConnections?.(), s.close() })

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; hits: () => number }> {
  let hits = 0
  const server = createServer((req, res) => {
    hits++
    handler(req, res)
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address() as { port: number }
  return { url: `http://127.0.0.1:${addr.port}`, hits: () => hits }
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

test('a silent endpoint times out and the next one answers', async () => {
  const silent = await serve(() => { /* never answers */ })
  const good = await serve((_req, res) => json(res, 200, { header: { revision: '7' } }))
  const client = new EtcdClient({ endpoints: [silent.url, good.url], timeoutMs: 300, logger: silentLogger })
  const t0 = Date.now()
  const res = await client.call<{ header: { revision: string } }>('/v3/kv/range', {}, AbortSignal.timeout(5000))
  assert.equal(res.header.revision, '7')
  assert.ok(Date.now() - t0 >= 290)
  // the working endpoint is remembered: no second timeout
  const t1 = Date.now()
  await client.call('/v3/kv/range', {}, AbortSignal.timeout(5000))
  assert.ok(Date.now() - t1 < 250)
  client.close()
})

test('gRPC Unavailable fails over; InvalidArgument does not', async () => {
  const unavailable = await serve((_req, res) => json(res, 503, { error: 'etcdserver: no leader', code: 14, message: 'etcdserver: no leader' }))
  const invalid = await serve((_req, res) => json(res, 400, { error: 'bad', code: 3, message: 'etcdserver: bad request' }))
  const good = await serve((_req, res) => json(res, 200, { ok: true }))
  const c1 = new EtcdClient({ endpoints: [unavailable.url, good.url], logger: silentLogger })
  assert.deepEqual(await c1.call('/v3/kv/range', {}, AbortSignal.timeout(5000)), { ok: true })
  const c2 = new EtcdClient({ endpoints: [invalid.url, good.url], logger: silentLogger })
  const before = good.hits()
  await assert.rejects(c2.call('/v3/kv/range', {}, AbortSignal.timeout(5000)), (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE') && /bad request/.test(err.message))
  assert.equal(good.hits(), before)
  c1.close()
  c2.close()
})

test('watch messages split across chunks are reassembled', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const text = '{"result":{"created":true}}\n{"result":{"events":[{"kv":{"key":"YQ=="}}]}}\n'
    res.write(text.slice(0, 10))
    setTimeout(() => res.write(text.slice(10, 40)), 20)
    setTimeout(() => res.end(text.slice(40)), 40)
  })
  const client = new EtcdClient({ endpoints: [s.url], logger: silentLogger })
  const got: unknown[] = []
  for await (const m of client.stream('/v3/watch', {}, AbortSignal.timeout(5000))) got.push(m)
  assert.deepEqual(got, [{ result: { created: true } }, { result: { events: [{ kv: { key: 'YQ==' } }] } }])
  client.close()
})

test('an idle watch is abandoned with REGISTRY_UNAVAILABLE', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"result":{"created":true}}\n')
  })
  const client = new EtcdClient({ endpoints: [s.url], watchIdleMs: 300, logger: silentLogger })
  const t0 = Date.now()
  await assert.rejects(async () => {
    for await (const _ of client.stream('/v3/watch', {}, AbortSignal.timeout(5000))) { /* created only */ }
  }, (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE'))
  assert.ok(Date.now() - t0 >= 290)
  client.close()
})

test('abort rejects a pending call with the signal reason and ends a watch quietly', async () => {
  const s = await serve((req, res) => {
    if (req.url === '/v3/watch') {
      res.writeHead(200)
      res.write('{"result":{"created":true}}\n')
    }
  })
  const client = new EtcdClient({ endpoints: [s.url], timeoutMs: 5000, logger: silentLogger })
  const ac = new AbortController()
  const reason = new Error('stop')
  const pending = client.call('/v3/kv/range', {}, ac.signal)
  setTimeout(() => ac.abort(reason), 50)
  await assert.rejects(pending, (err: unknown) => err === reason)
  const ac2 = new AbortController()
  const seen: unknown[] = []
  setTimeout(() => ac2.abort(), 100)
  for await (const m of client.stream('/v3/watch', {}, ac2.signal)) seen.push(m)
  assert.equal(seen.length, 1)
  client.close()
})
