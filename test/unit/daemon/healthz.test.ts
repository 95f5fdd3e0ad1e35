import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startHealthServer } from '../../../src/daemon/healthz.ts'
import { isWeftError } from '../../../src/errors.ts'

test('healthz answers as flanneld does; readyz turns 200 once ready', async () => {
  const server = await startHealthServer('127.0.0.1', 0)
  try {
    const base = `http://127.0.0.1:${server.port}`
    const health = await fetch(`${base}/healthz`)
    assert.equal(health.status, 200)
    assert.equal(await health.text(), 'flanneld is running')
    const notReady = await fetch(`${base}/readyz`)
    assert.equal(notReady.status, 503)
    assert.equal(await notReady.text(), 'flanneld is not ready yet')
    server.setReady()
    const ready = await fetch(`${base}/readyz`)
    assert.equal(ready.status, 200)
    assert.equal(await ready.text(), 'flanneld is ready')
    assert.equal((await fetch(`${base}/metrics`)).status, 404)
  } finally {
    await server.close()
  }
})

test('a port already in use is a usage error naming the flag', async () => {
  const first = await startHealthServer('127.0.0.1', 0)
  try {
    await assert.rejects(startHealthServer('127.0.0.1', first.port), (err) => isWeftError(err, 'USAGE') && /--healthz-port/.test(err.message) && /EADDRINUSE/.test(err.message))
  } finally {
    await first.close()
  }
})

test('a route added after start is served; other paths stay 404', async () => {
  const server = await startHealthServer('127.0.0.1', 0)
  try {
    const base = `http://127.0.0.1:${server.port}`
    assert.equal((await fetch(`${base}/probes`)).status, 404)
    server.route('/probes', () => ({ status: 200, contentType: 'application/json', body: '{"probes":[]}' }))
    const r = await fetch(`${base}/probes?x=1`)
    assert.equal(r.status, 200)
    assert.deepEqual(await r.json(), { probes: [] })
    assert.equal((await fetch(`${base}/other`)).status, 404)
    assert.equal((await fetch(`${base}/healthz`)).status, 200)
  } finally {
    await server.close()
  }
})
