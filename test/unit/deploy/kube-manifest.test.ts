/**
 * deploy/kube-weft.yml: every object conforms to its kind's Kubernetes schema (strict: unknown
 * fields and wrong types fail), keeps kube-flannel.yml's names and values (reference §4.1), and
 * agrees with weft itself: weftd accepts the args and env, the mounts hold weftd's and the CNI
 * plugin's default paths, both ConfigMap files parse with weft's parsers, and the ClusterRole
 * grants exactly the calls of weft's Kubernetes client.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, posix, resolve } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { schemaProblems, type KubeObject } from './kube-schema.ts'
import { FLAGS, envName, parseDaemonArgs, type DaemonOptions } from '../../../src/daemon/options.ts'
import { parseNetworkConfig } from '../../../src/config/parse-network-config.ts'
import { backendRegistry } from '../../../src/backend/registry.ts'
import { formatCidr } from '../../../src/ip/ip.ts'
import { DEFAULT_SUBNET_FILE, parseNetConf } from '../../../src/cni/net-conf.ts'
import { FALLBACK_CNI_DIRS } from '../../../src/cni/cni-plugin.ts'
import type { KubeApi } from '../../../src/subnet/kube/kube-api.ts'

const REPO = resolve(import.meta.dirname, '../../..')
const MANIFEST = join(REPO, 'deploy/kube-weft.yml')

type Obj = Record<string, any>

function loadDocs(text: string): Obj[] {
  return parseAllDocuments(text).map((doc) => {
    assert.deepEqual(doc.errors, [], 'YAML syntax')
    return doc.toJS() as Obj
  }).filter((d) => d !== null)
}

const docs = loadDocs(readFileSync(MANIFEST, 'utf8'))
const find = (kind: string): Obj => {
  const matches = docs.filter((d) => d.kind === kind)
  assert.equal(matches.length, 1, `one ${kind}`)
  return matches[0] as Obj
}
const ds = find('DaemonSet')
const pod = ds.spec.template.spec
const main = pod.containers[0]
const init = (name: string): Obj => pod.initContainers.find((c: Obj) => c.name === name)
const cm = find('ConfigMap')

const dirOf = (mountPath: string): string => posix.normalize(mountPath).replace(/(.)\/$/, '$1')

/** Host path behind a container's path, through the mount holding it and the pod's volumes. */
function hostPathOf(container: Obj, path: string): string | undefined {
  for (const m of container.volumeMounts ?? []) {
    const dir = dirOf(m.mountPath)
    if (path !== dir && !path.startsWith(dir + '/')) continue
    const volume = pod.volumes.find((v: Obj) => v.name === m.name)
    if (volume?.hostPath) return posix.join(volume.hostPath.path, posix.relative(dir, path))
  }
  return undefined
}

/** ConfigMap key behind a container's path, when the path is a file of a configMap mount. */
function configMapKeyOf(container: Obj, path: string): string | undefined {
  for (const m of container.volumeMounts ?? []) {
    const volume = pod.volumes.find((v: Obj) => v.name === m.name)
    if (volume?.configMap?.name === cm.metadata.name && posix.dirname(path) === dirOf(m.mountPath)) return posix.basename(path)
  }
  return undefined
}

test('every object conforms to its kind\'s Kubernetes schema', async () => {
  assert.deepEqual(docs.map((d) => `${d.apiVersion} ${d.kind}`), [
    'v1 Namespace', 'rbac.authorization.k8s.io/v1 ClusterRole', 'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
    'v1 ServiceAccount', 'v1 ConfigMap', 'apps/v1 DaemonSet',
  ])
  assert.deepEqual(await schemaProblems(docs as KubeObject[]), [])
})

test('the schema check fails on unknown fields, wrong types and missing required fields', async () => {
  const broken = (edit: (copy: Obj[]) => void): Promise<string[]> => {
    const copy = structuredClone(docs)
    edit(copy)
    return schemaProblems(copy as KubeObject[])
  }
  const ds = (c: Obj[]): Obj => c[5] as Obj
  const cases: [string, (c: Obj[]) => void, RegExp][] = [
    ['misspelled pod field', (c) => { ds(c).spec.template.spec.hostNetwrok = true }, /'"hostNetwrok"' does not exist in type 'IPodSpec'/],
    ['unknown container field', (c) => { ds(c).spec.template.spec.containers[0].capabilities = ['NET_ADMIN'] }, /'"capabilities"' does not exist in type 'IContainer'/],
    ['unknown probe field', (c) => { ds(c).spec.template.spec.containers[0].livenessProbe.httpGet.paht = '/healthz' }, /'"paht"' does not exist in type 'IHTTPGetAction'/],
    ['unknown top-level field', (c) => { (c[4] as Obj).spec = {} }, /'"spec"' does not exist in type 'IConfigMap'/],
    ['string for a boolean', (c) => { ds(c).spec.template.spec.hostNetwork = 'true' }, /hostNetwork must be boolean/],
    ['malformed quantity', (c) => { ds(c).spec.template.spec.containers[0].resources.requests.memory = '50 MiB' }, /memory must match format "quantity"/],
    ['list for a string', (c) => { ds(c).spec.template.spec.containers[0].image = ['weft:0.1.0'] }, /image must be string/],
    ['missing required field', (c) => { delete ds(c).spec.template.spec.containers[0].name }, /must have required property name/],
    ['unknown kind', (c) => { (c[0] as Obj).kind = 'Namespaces' }, /no Namespaces in v1/],
  ]
  for (const [what, edit, expected] of cases) {
    const problems = await broken(edit)
    assert.ok(problems.some((p) => expected.test(p)), `${what}: ${JSON.stringify(problems)}`)
  }
})

test('flannel\'s objects, names and ConfigMap values (kube-flannel.yml v0.28.9)', () => {
  const ns = find('Namespace')
  assert.equal(ns.metadata.name, 'kube-flannel')
  assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged')
  for (const kind of ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']) assert.equal(find(kind).metadata.name, 'flannel')
  const binding = find('ClusterRoleBinding')
  assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'flannel' })
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'flannel', namespace: 'kube-flannel' }])
  assert.equal(find('ServiceAccount').metadata.namespace, 'kube-flannel')
  assert.equal(pod.serviceAccountName, 'flannel')

  assert.equal(cm.metadata.name, 'kube-flannel-cfg')
  assert.deepEqual(Object.keys(cm.data).sort(), ['cni-conf.json', 'net-conf.json'])
  assert.deepEqual(JSON.parse(cm.data['cni-conf.json']), {
    name: 'cbr0', cniVersion: '0.3.1',
    plugins: [{ type: 'flannel', delegate: { hairpinMode: true, isDefaultGateway: true } }, { type: 'portmap', capabilities: { portMappings: true } }],
  })
  assert.deepEqual(JSON.parse(cm.data['net-conf.json']), { Network: '10.244.0.0/16', EnableNFTables: false, Backend: { Type: 'vxlan' } })

  assert.equal(ds.metadata.name, 'kube-flannel-ds')
  assert.equal(ds.metadata.namespace, 'kube-flannel')
  assert.equal(pod.hostNetwork, true)
  assert.equal(pod.priorityClassName, 'system-node-critical')
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists', effect: 'NoSchedule' }])
  assert.deepEqual(pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms,
    [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] }])
  assert.deepEqual(main.securityContext, { privileged: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } })
  assert.deepEqual(main.resources, { requests: { cpu: '100m', memory: '50Mi' } })
  assert.deepEqual(pod.initContainers.map((c: Obj) => c.name), ['install-cni-plugin', 'install-cni'])
  const xtables = pod.volumes.find((v: Obj) => v.hostPath?.path === '/run/xtables.lock')
  assert.equal(xtables?.hostPath.type, 'FileOrCreate')
  assert.equal(hostPathOf(main, '/run/xtables.lock'), '/run/xtables.lock')
  assert.deepEqual(pod.volumes.filter((v: Obj) => v.hostPath).map((v: Obj) => v.hostPath.path).sort(),
    ['/etc/cni/net.d', '/opt/cni/bin', '/run/flannel', '/run/xtables.lock'])
})

test('weftd accepts the args and env, and its probes and mounts match its flags\' values', () => {
  const env: Record<string, string> = {}
  for (const e of main.env) env[e.name] = e.value ?? `from ${e.valueFrom.fieldRef.fieldPath}`
  assert.deepEqual(main.command, ['/opt/weft/bin/weftd'])
  const parsed = parseDaemonArgs(main.args, env) as DaemonOptions
  assert.equal(parsed.kubeSubnetMgr, true)
  assert.equal(parsed.ipMasq, true)
  assert.equal(parsed.healthzPort, 8081)
  assert.deepEqual([main.livenessProbe.httpGet, main.readinessProbe.httpGet], [{ path: '/healthz', port: 8081 }, { path: '/readyz', port: 8081 }])
  assert.deepEqual(Object.entries(parsed.sources).filter(([, s]) => s !== 'default').map(([f]) => f).sort(), ['healthz-port', 'ip-masq', 'kube-subnet-mgr'])
  // A misspelled flag would fail here the way it fails weftd at start.
  assert.throws(() => parseDaemonArgs(['--kube-subnet-manager'], {}), /unknown flag/)

  // subnet.env reaches the host, where the CNI plugin reads it from its own default path.
  assert.equal(hostPathOf(main, parsed.subnetFile), DEFAULT_SUBNET_FILE)
  // net-conf.json is the ConfigMap key of weftd's default --net-config-path.
  assert.equal(configMapKeyOf(main, parsed.netConfigPath), 'net-conf.json')

  // Each variable feeds a flag, or names one weft reads, or is a flanneld knob weft has no use for.
  const flagVars = new Set(FLAGS.filter((f) => f.env !== false).map((f) => envName(f.name)))
  const read = (name: string) => sourceFiles(join(REPO, 'src')).some((f) => readFileSync(f, 'utf8').includes(`'${name}'`))
  const flannelOnly = ['EVENT_QUEUE_DEPTH', 'CONT_WHEN_CACHE_NOT_READY']
  for (const name of Object.keys(env)) {
    if (flagVars.has(name)) continue
    if (flannelOnly.includes(name)) {
      assert.ok(!read(name), `${name} is read by weft now: drop it from flannelOnly and deploy/README.md's note`)
      continue
    }
    assert.ok(read(name), `${name} is set in the DaemonSet but weft never reads it`)
  }
  assert.deepEqual(Object.keys(env).filter((n) => !flannelOnly.includes(n)).sort(), ['NODE_NAME', 'POD_NAME', 'POD_NAMESPACE'])
})

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])
}

test('the ConfigMap\'s files parse with weft\'s parsers, and the CNI files land where the runtime looks', () => {
  const { config } = parseNetworkConfig(cm.data['net-conf.json'], backendRegistry, { mode: 'kube' })
  assert.equal(formatCidr(config.ipv4!.network), '10.244.0.0/16')
  assert.equal(config.backend.type, 'vxlan')

  const list = JSON.parse(cm.data['cni-conf.json'])
  const entry = parseNetConf(JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] }))
  assert.equal(entry.subnetFile, DEFAULT_SUBNET_FILE)
  assert.deepEqual(entry.delegate, { hairpinMode: true, isDefaultGateway: true })

  // install-cni-plugin: the image's plugin becomes /opt/cni/bin/<type> on the host
  const pluginInit = init('install-cni-plugin')
  const script = pluginInit.args.join(' ')
  const target = /mv -f \S+ (\S+)$/.exec(script)?.[1] ?? ''
  assert.equal(hostPathOf(pluginInit, target), `/opt/cni/bin/${entry.type}`)
  assert.ok(FALLBACK_CNI_DIRS.includes(dirname(`/opt/cni/bin/${entry.type}`) as never), 'delegates are found beside it')
  // install-cni: the ConfigMap's cni-conf.json becomes the host's conflist
  const confInit = init('install-cni')
  const [, source, dest] = confInit.args as string[]
  assert.equal(configMapKeyOf(confInit, source as string), 'cni-conf.json')
  assert.equal(hostPathOf(confInit, dest as string), '/etc/cni/net.d/10-flannel.conflist')

  // the image holds what the containers run
  const containerfile = readFileSync(join(REPO, 'deploy/Containerfile'), 'utf8')
  const pluginSource = /cp -f (\S+) /.exec(script)?.[1] ?? ''
  assert.match(containerfile, new RegExp(`${pluginSource.replace(/\//g, '\\/')}\\b`), 'the image ships the plugin the init container copies')
  assert.match(containerfile, /COPY --from=build \S+ \/opt\/weft\n/, 'the image ships /opt/weft (bin/weftd, the command)')
  // flannel's own DaemonSet runs these paths; `kubectl set image` alone must keep working
  assert.match(containerfile, /ln -s \/opt\/weft\/bin\/weftd \/opt\/bin\/flanneld\b/)
  assert.match(containerfile, /ln -s \/opt\/weft\/cni\/flannel \/flannel\b/)
  const images = new Set([...pod.initContainers, ...pod.containers].map((c: Obj) => c.image))
  assert.equal(images.size, 1, 'one image for all containers')
})

/** What each KubeApi method needs from RBAC; the type makes a new method a compile error here. */
const GRANTS: Record<Exclude<keyof KubeApi, 'server' | 'close'>, { resource: string; verb: string }> = {
  getPod: { resource: 'pods', verb: 'get' },
  getNode: { resource: 'nodes', verb: 'get' },
  listNodes: { resource: 'nodes', verb: 'list' },
  watchNodes: { resource: 'nodes', verb: 'watch' },
  patchNodeStatus: { resource: 'nodes/status', verb: 'patch' },
}

test('the ClusterRole grants exactly what weft\'s Kubernetes client calls', () => {
  const granted = find('ClusterRole').rules.flatMap((r: Obj) => {
    assert.deepEqual(r.apiGroups, [''], 'core API group only')
    return r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${res} ${v}`))
  }).sort()
  assert.deepEqual(granted, Object.values(GRANTS).map((g) => `${g.resource} ${g.verb}`).sort())
})
