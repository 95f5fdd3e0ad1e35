/**
 * EtcdRegistry list pagination against a scripted gateway: pages continue at last key + \0,
 * later pages are pinned to the first page's revision, and a compaction between pages
 * restarts the listing at a fresh revision.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { EtcdRegistry } from '../../src/subnet/etcd/etcd-registry.ts'
import { silentLogger } from '../../src/log/logger.ts'

const servers: Server[] = []
after(() => { for (const s of servers) s.close() })

const b64 = (s: string): string => Buffer.from(s).toString('base64')
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8')
const P = '/coreos.com/network'
const KEYS = ['10.5.1.0-24', '10.5.2.0-24', '10.5.3.0-24', '10.5.4.0-24', '10.5.5.0-24']

interface RangeBody { key: string; range_end: string; limit: string; revision?: string }

test('pages continue after the last key at a pinned revision; compaction between pages restarts', async () => {
  const requests: RangeBody[] = []
  let compactOnce = true
  const server = createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => { raw += c.toString() })
    req.on('end', () => {
      const body = JSON.parse(raw) as RangeBody
      requests.push(body)
      const start = unb64(body.key).slice(`${P}/subnets/`.length)
      if (body.revision === '100' && compactOnce) {
        compactOnce = false
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: 'etcdserver: mvcc: required revision has been compacted', code: 11, message: 'etcdserver: mvcc: required revision has been compacted' }))
        return
      }
      const rest = KEYS.filter((k) => k >= start.replace(/\0$/, '') && (!start.endsWith('\0') || k > start.slice(0, -1)))
      const page = rest.slice(0, Number(body.limit))
      const revision = body.revision ?? (requests.length === 1 ? '100' : '200')
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        header: { revision },
        kvs: page.map((k, i) => ({ key: b64(`${P}/subnets/${k}`), value: b64(`v${k}`), mod_revision: String(50 + i), ...(i % 2 ? { lease: '77' } : {}) })),
        more: rest.length > page.length,
        count: String(rest.length),
      }))
    })
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const registry = new EtcdRegistry({ endpoints: [`http://127.0.0.1:${(server.address() as { port: number }).port}`], logger: silentLogger, pageSize: 2 })
  try {
    const listing = await registry.listSubnets(P, AbortSignal.timeout(5000))
    assert.deepEqual(listing.entries.map((e) => e.key), KEYS)
    assert.equal(listing.revision, '200')
    assert.equal(listing.entries[1]!.leaseId, '77')
    assert.equal(listing.entries[0]!.leaseId, '0')
    // 1st listing: page 1 at rev 100, page 2 fails (compacted); 2nd listing: 3 pages pinned to rev 200
    assert.deepEqual(requests.map((r) => r.revision ?? '-'), ['-', '100', '-', '200', '200'])
    assert.equal(unb64(requests[3]!.key), `${P}/subnets/10.5.2.0-24\0`)
    assert.equal(unb64(requests[0]!.range_end), `${P}/subnets0`)
    assert.ok(requests.every((r) => r.limit === '2'))
  } finally {
    await registry.close()
  }
})
