import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolveKubeClientConfig, type KubeClientInputs } from '../../../../src/subnet/kube/kube-client-config.ts'
import { ConfigError } from '../../../../src/errors.ts'

const CA = '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n'
const CERT = '-----BEGIN CERTIFICATE-----\ncert\n-----END CERTIFICATE-----\n'
const KEY = '-----BEGIN EC PRIVATE KEY-----\nkey\n-----END EC PRIVATE KEY-----\n'
const b64 = (s: string): string => Buffer.from(s).toString('base64')

/** Inputs whose file reads come from `files`; a missing path fails as fs would. */
function inputs(files: Record<string, string>, over: Partial<KubeClientInputs> = {}): KubeClientInputs {
  return {
    kubeApiUrl: '', kubeconfigFile: '', env: {},
    readFile: (path) => {
      const text = files[path]
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' })
      return Buffer.from(text)
    },
    ...over,
  }
}

function kubeconfig(cluster: string, user: string, extra = ''): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
${cluster.replace(/^/gm, '    ')}
contexts:
- name: other
  context: {cluster: c1, user: nobody}
- name: main
  context:
    cluster: c1
    user: u1
    namespace: ns1
current-context: main
users:
- name: u1
  user:
${user.replace(/^/gm, '    ')}
${extra}`
}

const configError = (re: RegExp) => (err: unknown) => err instanceof ConfigError && re.test(err.message)

test('in-cluster: service host and port, IPv6 bracketed, service-account token and CA', () => {
  const files = { '/sa/token': 'tok-1\n', '/sa/ca.crt': CA, '/sa/namespace': 'kube-flannel' }
  const c = resolveKubeClientConfig(inputs(files, { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: '/sa' }))
  assert.equal(c.server, 'https://10.96.0.1') // URL normalization drops the default port
  assert.deepEqual(c.auth, { kind: 'tokenFile', path: '/sa/token', token: 'tok-1' })
  assert.equal(c.tls.ca?.toString(), CA)
  assert.equal(c.namespace, 'kube-flannel')
  const v6 = resolveKubeClientConfig(inputs(files, { env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, serviceAccountDir: '/sa' }))
  assert.equal(v6.server, 'https://[fd00::1]:6443')
})

test('in-cluster: the default service-account directory', () => {
  const files = { '/var/run/secrets/kubernetes.io/serviceaccount/token': 't', '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt': CA }
  const c = resolveKubeClientConfig(inputs(files, { env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' } }))
  assert.deepEqual(c.auth, { kind: 'tokenFile', path: '/var/run/secrets/kubernetes.io/serviceaccount/token', token: 't' })
  assert.equal(c.tls.ca?.toString(), CA)
})

test('in-cluster: no service env → tells to give a flag or run in a pod; no token file → names it', () => {
  assert.throws(() => resolveKubeClientConfig(inputs({}, { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' } })), configError(/--kube-api-url or --kubeconfig-file, or run in a pod/))
  assert.throws(
    () => resolveKubeClientConfig(inputs({}, { env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }, serviceAccountDir: '/sa' })),
    configError(/service account token: cannot read \/sa\/token: ENOENT/),
  )
})

test('--kube-api-url alone: that URL, no credentials, a warning; a path prefix is kept', () => {
  const c = resolveKubeClientConfig(inputs({}, { kubeApiUrl: 'http://127.0.0.1:8080/k8s/' }))
  assert.equal(c.server, 'http://127.0.0.1:8080/k8s')
  assert.deepEqual(c.auth, { kind: 'none' })
  assert.match(c.warnings.join('\n'), /without credentials/)
  assert.throws(() => resolveKubeClientConfig(inputs({}, { kubeApiUrl: 'ftp://x' })), configError(/^kube-api-url: scheme must be https or http/))
})

test('kubeconfig: current context, data fields, token; --kube-api-url overrides the server', () => {
  const text = kubeconfig(`server: https://10.0.0.1:6443\ncertificate-authority-data: ${b64(CA)}\ntls-server-name: api.internal`, `token: abc`)
  const c = resolveKubeClientConfig(inputs({ '/etc/k.yaml': text }, { kubeconfigFile: '/etc/k.yaml' }))
  assert.equal(c.server, 'https://10.0.0.1:6443')
  assert.equal(c.tls.ca?.toString(), CA)
  assert.equal(c.tls.serverName, 'api.internal')
  assert.deepEqual(c.auth, { kind: 'token', token: 'abc' })
  assert.equal(c.namespace, 'ns1')
  assert.match(c.source, /context main, cluster c1, user u1/)
  const over = resolveKubeClientConfig(inputs({ '/etc/k.yaml': text }, { kubeconfigFile: '/etc/k.yaml', kubeApiUrl: 'https://lb:8443' }))
  assert.equal(over.server, 'https://lb:8443')
})

test('kubeconfig: file paths relative to its directory, client certificate, token file', () => {
  const files = {
    '/cfg/dir/k.yaml': kubeconfig('server: https://h:6443\ncertificate-authority: pki/ca.crt', 'client-certificate: pki/c.crt\nclient-key: /abs/c.key\ntokenFile: ../tok'),
    '/cfg/dir/pki/ca.crt': CA, '/cfg/dir/pki/c.crt': CERT, '/abs/c.key': KEY, '/cfg/tok': 'file-token\n',
  }
  const c = resolveKubeClientConfig(inputs(files, { kubeconfigFile: '/cfg/dir/k.yaml' }))
  assert.equal(c.tls.ca?.toString(), CA)
  assert.equal(c.tls.cert?.toString(), CERT)
  assert.equal(c.tls.key?.toString(), KEY)
  assert.deepEqual(c.auth, { kind: 'tokenFile', path: '/cfg/tok', token: 'file-token' })
})

test('kubeconfig in JSON; insecure-skip-tls-verify; basic auth; client cert data', () => {
  const json = JSON.stringify({
    clusters: [{ name: 'c1', cluster: { server: 'https://h:6443', 'insecure-skip-tls-verify': true } }],
    contexts: [{ name: 'main', context: { cluster: 'c1', user: 'u1' } }],
    users: [{ name: 'u1', user: { username: 'bob', password: 'pw', 'client-certificate-data': b64(CERT), 'client-key-data': b64(KEY) } }],
    'current-context': 'main',
  })
  const c = resolveKubeClientConfig(inputs({ '/k.json': json }, { kubeconfigFile: '/k.json' }))
  assert.equal(c.tls.insecureSkipTLSVerify, true)
  assert.match(c.warnings.join('\n'), /not verified/)
  assert.deepEqual(c.auth, { kind: 'basic', username: 'bob', password: 'pw' })
  assert.equal(c.tls.cert?.toString(), CERT)
  assert.equal(c.tls.key?.toString(), KEY)
})

test('kubeconfig: every malformed or unsupported field is named', () => {
  const cases: [string, RegExp][] = [
    [kubeconfig('server: https://h', `client-certificate-data: ${b64(CERT)}\nclient-key-data: "%%%not base64"`), /^kubeconfig \/k\.yaml: users\[0\]\.user\.client-key-data: not base64$/],
    [kubeconfig('server: https://h', `client-certificate-data: ${b64('hello')}\nclient-key-data: ${b64(KEY)}`), /users\[0\]\.user\.client-certificate-data: not PEM/],
    [kubeconfig('server: https://h', 'exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: aws'), /users\[0\]\.user\.exec: exec credential plugins are not supported/],
    [kubeconfig('server: https://h', 'auth-provider:\n  name: gcp'), /users\[0\]\.user\.auth-provider: auth-provider plugins are not supported/],
    [kubeconfig('server: https://h\ninsecure-skip-tls-verify: maybe', 'token: t'), /clusters\[0\]\.cluster\.insecure-skip-tls-verify: not a boolean/],
    [kubeconfig(`server: https://h\ninsecure-skip-tls-verify: true\ncertificate-authority-data: ${b64(CA)}`, 'token: t'), /insecure-skip-tls-verify: cannot be combined/],
    [kubeconfig('server: [a]', 'token: t'), /clusters\[0\]\.cluster\.server: not a string/],
    [kubeconfig('server: https://h', `client-certificate-data: ${b64(CERT)}`), /users\[0\]\.user\.client-key: a client certificate needs its key/],
    [kubeconfig('server: https://h', 'token: t\nusername: u'), /users\[0\]\.user: a token and username\/password cannot both be set/],
    [kubeconfig('server: https://h', 'client-certificate: missing.crt\nclient-key: missing.key'), /client-certificate: cannot read \/missing\.crt/],
    [kubeconfig('server: https://h', 'token: t').replace('current-context: main', 'current-context: gone'), /current-context: no context named "gone"/],
    [kubeconfig('server: https://h', 'token: t').replace('current-context: main', ''), /current-context: not set/],
    [kubeconfig('server: https://h', 'token: t').replace('name: u1', 'name: u2'), /contexts\[1\]\.context\.user: no user named "u1"/],
    [kubeconfig('server: https://h', 'token: t').replace('name: c1', 'name: c2'), /contexts\[1\]\.context\.cluster: no cluster named "c1"/],
    [kubeconfig('certificate-authority-data: ""', 'token: t'), /has no server/],
    [kubeconfig('server: "https://h', 'token: t'), /not valid YAML: line \d+: unterminated/],
    ['', /the file is empty/],
    ['{"clusters": [', /not valid JSON/],
    ['- a\n- b\n', /^kubeconfig \/k\.yaml: not a mapping$/],
  ]
  for (const [text, message] of cases) {
    assert.throws(() => resolveKubeClientConfig(inputs({ '/k.yaml': text }, { kubeconfigFile: '/k.yaml' })), configError(message), `${message}`)
  }
  assert.throws(() => resolveKubeClientConfig(inputs({}, { kubeconfigFile: '/none.yaml' })), configError(/^kubeconfig-file: cannot read \/none\.yaml/))
})

test('kubeconfig errors are usage errors (exit code 2)', () => {
  assert.throws(() => resolveKubeClientConfig(inputs({ '/k.yaml': '' }, { kubeconfigFile: '/k.yaml' })), (err: unknown) => err instanceof ConfigError && err.code === 'USAGE')
})
