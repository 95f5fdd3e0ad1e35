/**
 * A kubeconfig file as kubectl writes it (YAML or JSON), reduced to what weft connects with:
 * the current context's cluster (server, CA, TLS server name, insecure flag) and user (token,
 * token file, client certificate, basic auth). Auth plugins (exec, auth-provider) and
 * impersonation are refused rather than silently ignored: weft would connect as someone else.
 */
import { dirname, isAbsolute, resolve } from 'node:path'
import { ConfigError } from '../../errors.ts'
import { parseYaml, YamlSyntaxError } from './kubeconfig-yaml.ts'

export interface KubeconfigSelection {
  /** The cluster's server, as written (may be empty when --kube-api-url overrides it). */
  readonly server: string
  readonly caFile?: string
  readonly caData?: Buffer
  readonly insecureSkipTLSVerify: boolean
  readonly tlsServerName?: string
  readonly token?: string
  /** Absolute path (relative ones are resolved against the kubeconfig's directory). */
  readonly tokenFile?: string
  readonly certFile?: string
  readonly certData?: Buffer
  readonly keyFile?: string
  readonly keyData?: Buffer
  readonly username?: string
  readonly password?: string
  readonly namespace?: string
  /** e.g. "context admin@k8s, cluster k8s, user admin", for the start-up log. */
  readonly description: string
}

type Obj = { readonly [key: string]: unknown }

const UNSUPPORTED_USER_FIELDS: Readonly<Record<string, string>> = {
  exec: 'exec credential plugins are not supported; use a token, token file or client certificate',
  'auth-provider': 'auth-provider plugins are not supported; use a token, token file or client certificate',
  as: 'impersonation is not supported',
  'as-uid': 'impersonation is not supported',
  'as-groups': 'impersonation is not supported',
  'as-user-extra': 'impersonation is not supported',
}

/** Parses `text` (the contents of `path`) and selects the current context. */
export function readKubeconfig(path: string, text: string): KubeconfigSelection {
  const fail = (field: string, rule: string): never => {
    throw new ConfigError(`kubeconfig ${path}${field === '' ? '' : `: ${field}`}`, rule, { code: 'USAGE' })
  }
  let doc: unknown
  try {
    // JSON is YAML too, but JSON.parse is exact and fast for the JSON kubeconfigs people generate.
    doc = /^\s*\{/.test(text) ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    if (err instanceof YamlSyntaxError || err instanceof SyntaxError) fail('', `not valid ${err instanceof YamlSyntaxError ? 'YAML' : 'JSON'}: ${err.message}`)
    throw err
  }
  if (doc === null || doc === undefined) fail('', 'the file is empty')
  const root = asObject(doc, '', fail)
  const base = dirname(resolve(path))
  const file = (o: Obj, key: string, where: string): string | undefined => {
    const p = optString(o, key, where, fail)
    return p === undefined || p === '' ? undefined : isAbsolute(p) ? p : resolve(base, p)
  }

  const contextName = optString(root, 'current-context', '', fail)
  if (contextName === undefined || contextName === '') return fail('current-context', 'not set (kubectl config use-context NAME)')
  const { value: context, where: contextAt } = named(root, 'contexts', 'context', contextName, fail)
  if (context === undefined) return fail('current-context', `no context named "${contextName}" in contexts`)
  const clusterName = optString(context, 'cluster', contextAt, fail) ?? ''
  if (clusterName === '') return fail(`${contextAt}.cluster`, 'not set')
  const { value: cluster, where: clusterAt } = named(root, 'clusters', 'cluster', clusterName, fail)
  if (cluster === undefined) return fail(`${contextAt}.cluster`, `no cluster named "${clusterName}" in clusters`)
  const userName = optString(context, 'user', contextAt, fail) ?? ''
  const found = userName === '' ? { value: {} as Obj, where: '' } : named(root, 'users', 'user', userName, fail)
  if (found.value === undefined) return fail(`${contextAt}.user`, `no user named "${userName}" in users`)
  const user = found.value
  const userAt = found.where

  for (const [key, rule] of Object.entries(UNSUPPORTED_USER_FIELDS)) {
    if (user[key] !== undefined && user[key] !== null && user[key] !== '') fail(`${userAt}.${key}`, rule)
  }
  if (cluster['proxy-url'] !== undefined && cluster['proxy-url'] !== null && cluster['proxy-url'] !== '') fail(`${clusterAt}.proxy-url`, 'proxies are not supported')

  const caData = optBase64Pem(cluster, 'certificate-authority-data', clusterAt, fail)
  const caFile = caData === undefined ? file(cluster, 'certificate-authority', clusterAt) : undefined
  const insecure = optBool(cluster, 'insecure-skip-tls-verify', clusterAt, fail) ?? false
  if (insecure && (caData !== undefined || caFile !== undefined)) {
    fail(`${clusterAt}.insecure-skip-tls-verify`, 'cannot be combined with certificate-authority(-data): choose one')
  }
  const certData = optBase64Pem(user, 'client-certificate-data', userAt, fail)
  const certFile = certData === undefined ? file(user, 'client-certificate', userAt) : undefined
  const keyData = optBase64Pem(user, 'client-key-data', userAt, fail)
  const keyFile = keyData === undefined ? file(user, 'client-key', userAt) : undefined
  if ((certData ?? certFile) !== undefined && (keyData ?? keyFile) === undefined) fail(`${userAt}.client-key`, 'a client certificate needs its key')
  if ((keyData ?? keyFile) !== undefined && (certData ?? certFile) === undefined) fail(`${userAt}.client-certificate`, 'a client key needs its certificate')
  const token = nonEmpty(optString(user, 'token', userAt, fail))
  const tokenFile = file(user, 'tokenFile', userAt)
  const username = nonEmpty(optString(user, 'username', userAt, fail))
  const password = nonEmpty(optString(user, 'password', userAt, fail))
  if ((token ?? tokenFile) !== undefined && (username ?? password) !== undefined) fail(userAt, 'a token and username/password cannot both be set')
  if (password !== undefined && username === undefined) fail(`${userAt}.username`, 'a password needs a username')

  const namespace = nonEmpty(optString(context, 'namespace', contextAt, fail))
  const tlsServerName = nonEmpty(optString(cluster, 'tls-server-name', clusterAt, fail))
  return {
    server: optString(cluster, 'server', clusterAt, fail) ?? '',
    insecureSkipTLSVerify: insecure,
    description: `context ${contextName}, cluster ${clusterName}${userName === '' ? '' : `, user ${userName}`}`,
    ...defined({ caData, caFile, tlsServerName, token, tokenFile, certData, certFile, keyData, keyFile, username, password, namespace }),
  }
}

type Fail = (field: string, rule: string) => never

/** The `inner` object of the entry named `name` in root[list] (kubeconfig's [{name, cluster: {...}}] lists). */
function named(root: Obj, list: string, inner: string, name: string, fail: Fail): { value: Obj | undefined; where: string } {
  const entries = root[list]
  if (entries === undefined || entries === null) return { value: undefined, where: list }
  if (!Array.isArray(entries)) return fail(list, 'not a list')
  for (let i = 0; i < entries.length; i++) {
    const entry = asObject(entries[i], `${list}[${i}]`, fail)
    const entryName = optString(entry, 'name', `${list}[${i}]`, fail)
    if (entryName !== name) continue
    const where = `${list}[${i}].${inner}`
    const value = entry[inner]
    return { value: value === undefined || value === null ? {} : asObject(value, where, fail), where }
  }
  return { value: undefined, where: list }
}

function asObject(value: unknown, where: string, fail: Fail): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(where, 'not a mapping')
  return value as Obj
}

function optString(o: Obj, key: string, where: string, fail: Fail): string | undefined {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') return fail(at(where, key), 'not a string')
  return v
}

function optBool(o: Obj, key: string, where: string, fail: Fail): boolean | undefined {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v === 'boolean') return v
  if (typeof v === 'string' && /^(true|True|TRUE)$/.test(v)) return true
  if (typeof v === 'string' && /^(false|False|FALSE)$/.test(v)) return false
  return fail(at(where, key), 'not a boolean (true or false)')
}

/** A *-data field: base64 of PEM (kubectl's form). */
function optBase64Pem(o: Obj, key: string, where: string, fail: Fail): Buffer | undefined {
  const text = nonEmpty(optString(o, key, where, fail))
  if (text === undefined) return undefined
  const compact = text.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return fail(at(where, key), 'not base64')
  const bytes = Buffer.from(compact, 'base64')
  if (!bytes.includes('-----BEGIN ')) return fail(at(where, key), 'not PEM after base64 decoding (expected "-----BEGIN ...")')
  return bytes
}

function at(where: string, key: string): string {
  return where === '' ? key : `${where}.${key}`
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] !== undefined) out[key] = o[key]
  return out
}
