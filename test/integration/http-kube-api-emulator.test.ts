/** HttpKubeApi against the Kubernetes API emulator (test/emulators/kube): the wire protocol end to end. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KubeEmulator } from '../emulators/kube/kube-emulator.ts'
import { FLANNEL, localAdmin } from '../emulators/kube/admin.ts'
import { HttpKubeApi } from '../../src/subnet/kube/http-kube-api.ts'
import { KubeApiError } from '../../src/subnet/kube/kube-api.ts'

const signal = new AbortController().signal

test('get, paged list, watch from the list, patch, 404, 410 after compaction, 429 with Retry-After; token rotation', async () => {
  const emu = await KubeEmulator.start({})
  const admin = localAdmin(emu)
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-emu-'))
  const tokenPath = join(dir, 'token')
  writeFileSync(tokenPath, (await admin.tokens())[FLANNEL]!)
  const api = new HttpKubeApi({ server: emu.url, tls: { insecureSkipTLSVerify: false }, auth: { kind: 'tokenFile', path: tokenPath, token: '' }, source: 'test', warnings: [] }, { tokenRecheckMs: 3_600_000 })
  const watch = new AbortController()
  try {
    await admin.createNode({ name: 'n1', podCIDR: '10.244.1.0/24', annotations: { a: 'b' } })
    await admin.createNode({ name: 'n2', podCIDR: '10.244.2.0/24' })
    assert.deepEqual((await api.getNode('n1', signal)).spec, { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] })
    const page1 = await api.listNodes({ limit: 1 }, signal)
    const page2 = await api.listNodes({ limit: 1, continue: page1.continue! }, signal)
    assert.deepEqual([...page1.items, ...page2.items].map((n) => n.metadata.name), ['n1', 'n2'])

    const it = api.watchNodes(page1.resourceVersion, { timeoutSeconds: 30 }, watch.signal)[Symbol.asyncIterator]()
    const next = it.next()
    const patched = await api.patchNodeStatus('n1', { metadata: { annotations: { x: 'y' } } }, 'strategic', signal)
    assert.deepEqual(patched.metadata.annotations, { a: 'b', x: 'y' })
    const event = (await next).value
    assert.equal(event?.type, 'MODIFIED')
    assert.equal(event?.type === 'MODIFIED' ? event.object.metadata.resourceVersion : '', patched.metadata.resourceVersion)

    await assert.rejects(api.getNode('nope', signal), (err: unknown) => err instanceof KubeApiError && err.code === 'REGISTRY_NOT_FOUND' && /404 NotFound: nodes "nope" not found/.test(err.message))
    await admin.compact()
    await assert.rejects((async () => { for await (const _ of api.watchNodes('1', {}, signal)) { /* none */ } })(), (err: unknown) => err instanceof KubeApiError && err.code === 'REGISTRY_COMPACTED')
    await admin.failNext({ code: 429, retryAfterSeconds: 3 })
    await assert.rejects(api.getNode('n1', signal), (err: unknown) => err instanceof KubeApiError && err.status === 429 && err.retryAfterSeconds === 3)

    // The old token is revoked; the kubelet would write the new one into the file.
    const fresh = await admin.rotateToken()
    writeFileSync(`${tokenPath}.tmp`, fresh)
    renameSync(`${tokenPath}.tmp`, tokenPath)
    assert.equal((await api.getNode('n2', signal)).metadata.name, 'n2')
  } finally {
    watch.abort()
    api.close()
    await emu.down()
    rmSync(dir, { recursive: true, force: true })
  }
})
