/** Run as a child (it imports nothing that loads node:https itself, unlike kube-test-server.ts) by http-kube-api.test.ts: which TLS modules a plain-http request loads, then an https one. */
import { HttpKubeApi } from '../../../../src/subnet/kube/http-kube-api.ts'

// moduleLoadList is untyped: the internal list of built-in modules loaded so far.
const loaded = (): readonly string[] => (process as unknown as { moduleLoadList: string[] }).moduleLoadList
const tlsModules = (): string[] => loaded().filter((m) => /^NativeModule (https|tls|_tls_wrap)$/.test(m))
const before = tlsModules()
for (const server of ['http://127.0.0.1:1', 'https://127.0.0.1:1']) {
  const api = new HttpKubeApi({ server, tls: { insecureSkipTLSVerify: false }, auth: { kind: 'none' }, source: 'probe', warnings: [] })
  await api.getNode('n', AbortSignal.timeout(2000)).catch(() => undefined)
  api.close()
  console.log(JSON.stringify(tlsModules().filter((m) => !before.includes(m))))
}
