/** HttpKubeApi over TLS: CA, client certificates, insecure mode, and SNI (none for an IP server). */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { HttpKubeApi } from '../../../../src/subnet/kube/http-kube-api.ts'
import { KubeApiError } from '../../../../src/subnet/kube/kube-api.ts'
import { resolveKubeClientConfig } from '../../../../src/subnet/kube/kube-client-config.ts'
import { fullNode, json, never, plainConfig, startServer, type TestServer } from './kube-test-server.ts'
import { issueTestCert, makeTestCa } from '../../../helpers/test-certs.ts'

const dir = mkdtempSync(join(tmpdir(), 'weft-kube-tls-'))
const f = (name: string): string => join(dir, name)
const pem = (name: string): Buffer => readFileSync(f(name))
let server: TestServer
const sni: (string | false | null)[] = []

const issue = (name: string, cn: string, ext: string): void => issueTestCert(dir, name, `/CN=${cn}`, ext)

before(async () => {
  makeTestCa(dir)
  issue('server', 'kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:kube.test\nextendedKeyUsage=serverAuth\n')
  issue('client', 'system:node:n1', 'extendedKeyUsage=clientAuth\n')
  server = await startServer((req, res) => {
    const socket = req.socket as TLSSocket
    sni.push(socket.servername)
    if (!socket.authorized) return json(res, 401, { kind: 'Status', status: 'Failure', reason: 'Unauthorized', message: 'Unauthorized', code: 401 })
    const node = fullNode(socket.getPeerCertificate().subject.CN as string)
    if (!req.url!.includes('watch=true')) return json(res, 200, node)
    res.writeHead(200)
    res.end(`${JSON.stringify({ type: 'ADDED', object: node })}\n`)
  }, { key: pem('server.key'), cert: pem('server.crt'), ca: pem('ca.crt'), requestCert: true, rejectUnauthorized: false })
})
after(async () => {
  await server?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function watchedNames(api: HttpKubeApi): Promise<string[]> {
  const names: string[] = []
  for await (const e of api.watchNodes('1', {}, never)) if (e.type !== 'BOOKMARK') names.push(e.object.metadata.name)
  return names
}

test('client certificate and CA, for gets and for the watch (its own connection); no SNI for an IP-address server', async () => {
  const api = new HttpKubeApi(plainConfig(server.url, { tls: { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key'), insecureSkipTLSVerify: false } }))
  try {
    assert.equal((await api.getNode('x', never)).metadata.name, 'system:node:n1')
    assert.equal(sni.at(-1), false)
    assert.deepEqual(await watchedNames(api), ['system:node:n1'])
    assert.equal(sni.at(-1), false)
  } finally {
    api.close()
  }
})

test('without the CA the server is not trusted; insecure-skip-tls-verify connects anyway', async () => {
  const untrusted = new HttpKubeApi(plainConfig(server.url))
  const insecure = new HttpKubeApi(plainConfig(server.url, { tls: { insecureSkipTLSVerify: true } }))
  try {
    await assert.rejects(untrusted.getNode('x', never), (err: unknown) => err instanceof KubeApiError && err.code === 'REGISTRY_UNAVAILABLE' && err.status === 0 && /certificate/i.test(err.message))
    // No client certificate: the test server answers 401.
    await assert.rejects(insecure.getNode('x', never), (err: unknown) => err instanceof KubeApiError && err.status === 401)
  } finally {
    untrusted.close()
    insecure.close()
  }
})

test('tls-server-name is sent as SNI and verified; a name the certificate lacks is refused', async () => {
  const tls = { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key'), insecureSkipTLSVerify: false }
  const named = new HttpKubeApi(plainConfig(server.url, { tls: { ...tls, serverName: 'kube.test' } }))
  const wrong = new HttpKubeApi(plainConfig(server.url, { tls: { ...tls, serverName: 'other.test' } }))
  try {
    await named.getNode('x', never)
    assert.equal(sni.at(-1), 'kube.test')
    await assert.rejects(wrong.getNode('x', never), (err: unknown) => err instanceof KubeApiError && err.status === 0 && /other\.test/.test(err.message))
  } finally {
    named.close()
    wrong.close()
  }
})

test('a kubeconfig with file paths resolved relative to it, end to end', async () => {
  writeFileSync(f('kubeconfig'), `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ${server.url}
    certificate-authority: ca.crt
contexts:
- name: n1
  context: {cluster: local, user: n1}
current-context: n1
users:
- name: n1
  user:
    client-certificate: client.crt
    client-key-data: ${pem('client.key').toString('base64')}
`)
  const api = new HttpKubeApi(resolveKubeClientConfig({ kubeApiUrl: '', kubeconfigFile: f('kubeconfig'), env: {} }))
  try {
    assert.equal((await api.getNode('x', never)).metadata.name, 'system:node:n1')
  } finally {
    api.close()
  }
})
