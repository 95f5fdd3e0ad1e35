/**
 * Where and how weftd reaches the Kubernetes API, chosen as flanneld does it (client-go's
 * BuildConfigFromFlags(--kube-api-url, --kubeconfig-file)):
 *  - neither flag: in-cluster, from KUBERNETES_SERVICE_HOST/PORT and the pod's service account;
 *  - only --kube-api-url: that URL, without credentials;
 *  - --kubeconfig-file: its current context; --kube-api-url, if given, overrides the server.
 * Files named by the config (CA, client certificate and key) are read here, so a wrong path
 * fails at start-up; the token file is re-read by the client (it rotates).
 */
import { readFileSync } from 'node:fs'
import { ConfigError, errorMessage } from '../../errors.ts'
import { readKubeconfig } from './kubeconfig.ts'

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface KubeClientInputs {
  /** --kube-api-url ('' when not given). */
  readonly kubeApiUrl: string
  /** --kubeconfig-file ('' when not given). */
  readonly kubeconfigFile: string
  readonly env: Readonly<Record<string, string | undefined>>
  /** Reads a file (tests inject one); default fs.readFileSync. */
  readonly readFile?: (path: string) => Buffer
  /** Default SERVICE_ACCOUNT_DIR. */
  readonly serviceAccountDir?: string
}

export type KubeAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'token'; readonly token: string }
  /** `token` is the file's contents at start-up (or the kubeconfig's token when the file could not be read). */
  | { readonly kind: 'tokenFile'; readonly path: string; readonly token: string }
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }

export interface KubeTlsConfig {
  /** PEM. */
  readonly ca?: Buffer
  readonly cert?: Buffer
  readonly key?: Buffer
  readonly insecureSkipTLSVerify: boolean
  /** Name to send (SNI) and verify the certificate against, instead of the URL's host. */
  readonly serverName?: string
}

export interface KubeClientConfig {
  /** Normalized server URL without a trailing slash: "https://10.0.0.1:6443", "https://lb/k8s". */
  readonly server: string
  readonly tls: KubeTlsConfig
  readonly auth: KubeAuth
  /** The kubeconfig context's namespace, or the service account's. */
  readonly namespace?: string
  /** How the config was found, for the start-up log. */
  readonly source: string
  /** Things to log as warnings (e.g. no credentials). */
  readonly warnings: readonly string[]
}

export function resolveKubeClientConfig(inputs: KubeClientInputs): KubeClientConfig {
  const read = inputs.readFile ?? ((path: string) => readFileSync(path))
  if (inputs.kubeconfigFile !== '') return fromKubeconfig(inputs, read)
  if (inputs.kubeApiUrl !== '') {
    return {
      server: normalizeServer(inputs.kubeApiUrl, 'kube-api-url'),
      tls: { insecureSkipTLSVerify: false },
      auth: { kind: 'none' },
      source: `--kube-api-url ${inputs.kubeApiUrl}`,
      warnings: ['--kube-api-url without --kubeconfig-file: connecting without credentials'],
    }
  }
  return inCluster(inputs, read)
}

function inCluster(inputs: KubeClientInputs, read: (path: string) => Buffer): KubeClientConfig {
  const host = inputs.env['KUBERNETES_SERVICE_HOST'] ?? ''
  const port = inputs.env['KUBERNETES_SERVICE_PORT'] ?? ''
  if (host === '' || port === '') {
    throw new ConfigError('kube-subnet-mgr', 'no Kubernetes API to connect to: give --kube-api-url or --kubeconfig-file, or run in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set)', { code: 'USAGE' })
  }
  const dir = inputs.serviceAccountDir ?? SERVICE_ACCOUNT_DIR
  const tokenPath = `${dir}/token`
  const token = readText(read, tokenPath, 'in-cluster service account token').trim()
  const warnings: string[] = []
  let ca: Buffer | undefined
  try {
    ca = read(`${dir}/ca.crt`)
  } catch (err) {
    // client-go carries on without the CA too; the TLS handshake will then say what is wrong.
    warnings.push(`in-cluster CA ${dir}/ca.crt not read (${errorMessage(err)}): verifying the API server with the system CAs`)
  }
  let namespace: string | undefined
  try {
    namespace = read(`${dir}/namespace`).toString('utf8').trim() || undefined
  } catch {
    // Only used for defaults; POD_NAMESPACE is what the node discovery reads.
  }
  const hostPart = host.includes(':') ? `[${host}]` : host
  return {
    server: normalizeServer(`https://${hostPart}:${port}`, 'KUBERNETES_SERVICE_HOST/PORT'),
    tls: { insecureSkipTLSVerify: false, ...(ca === undefined ? {} : { ca }) },
    auth: { kind: 'tokenFile', path: tokenPath, token },
    source: `in-cluster (service account ${dir})`,
    warnings,
    ...(namespace === undefined ? {} : { namespace }),
  }
}

function fromKubeconfig(inputs: KubeClientInputs, read: (path: string) => Buffer): KubeClientConfig {
  const path = inputs.kubeconfigFile
  const k = readKubeconfig(path, readText(read, path, 'kubeconfig-file'))
  const server = inputs.kubeApiUrl !== '' ? inputs.kubeApiUrl : k.server
  if (server === '') throw new ConfigError(`kubeconfig ${path}`, `the cluster of ${k.description} has no server (set it, or give --kube-api-url)`, { code: 'USAGE' })
  const pem = (data: Buffer | undefined, file: string | undefined, what: string): Buffer | undefined =>
    data ?? (file === undefined ? undefined : readBytes(read, file, `kubeconfig ${path}: ${what}`))
  const ca = pem(k.caData, k.caFile, 'certificate-authority')
  const cert = pem(k.certData, k.certFile, 'client-certificate')
  const key = pem(k.keyData, k.keyFile, 'client-key')
  let auth: KubeAuth = { kind: 'none' }
  const warnings: string[] = []
  if (k.tokenFile !== undefined) {
    let token = k.token
    try {
      token = read(k.tokenFile).toString('utf8').trim()
    } catch (err) {
      if (token === undefined) throw new ConfigError(`kubeconfig ${path}: tokenFile`, `cannot read ${k.tokenFile}: ${errorMessage(err)}`, { code: 'USAGE', cause: err })
      warnings.push(`kubeconfig ${path}: tokenFile ${k.tokenFile} not read (${errorMessage(err)}): using the token until it is`)
    }
    auth = { kind: 'tokenFile', path: k.tokenFile, token }
  } else if (k.token !== undefined) {
    auth = { kind: 'token', token: k.token }
  } else if (k.username !== undefined) {
    auth = { kind: 'basic', username: k.username, password: k.password ?? '' }
  }
  if (auth.kind === 'none' && cert === undefined) warnings.push(`kubeconfig ${path}: ${k.description} has no credentials`)
  if (k.insecureSkipTLSVerify) warnings.push(`kubeconfig ${path}: insecure-skip-tls-verify: the API server's certificate is not verified`)
  return {
    server: normalizeServer(server, inputs.kubeApiUrl !== '' ? 'kube-api-url' : `kubeconfig ${path}: server`),
    tls: {
      insecureSkipTLSVerify: k.insecureSkipTLSVerify,
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(k.tlsServerName === undefined ? {} : { serverName: k.tlsServerName }),
    },
    auth,
    source: `kubeconfig ${path} (${k.description})`,
    warnings,
    ...(k.namespace === undefined ? {} : { namespace: k.namespace }),
  }
}

/** "host:6443" → "https://host:6443"; a path prefix is kept, the trailing slash dropped. */
export function normalizeServer(server: string, field: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(server) ? server : `https://${server}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new ConfigError(field, `not a URL: "${server}"`, { code: 'USAGE' })
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(field, `scheme must be https or http: "${server}"`, { code: 'USAGE' })
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new ConfigError(field, `no query, fragment or credentials allowed in the server URL: "${server}"`, { code: 'USAGE' })
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`
}

function readBytes(read: (path: string) => Buffer, path: string, what: string): Buffer {
  try {
    return read(path)
  } catch (err) {
    throw new ConfigError(what, `cannot read ${path}: ${errorMessage(err)}`, { code: 'USAGE', cause: err })
  }
}

function readText(read: (path: string) => Buffer, path: string, what: string): string {
  return readBytes(read, path, what).toString('utf8')
}
