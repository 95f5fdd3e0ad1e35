/**
 * The kube emulator's node IPAM, scale (5,000 nodes), client certificates, and the standalone
 * runner inside a network namespace controlled over the unix-socket admin API.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:https'
import { readFileSync, existsSync } from 'node:fs'
import { execFileSync, spawnSync } from 'node:child_process'
import { startKubeEmulator, type KubeApiServer } from '../helpers/kube-apiserver.ts'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function get(k: KubeApiServer, path: string, opts: { token?: string; cert?: { certFile: string; keyFile: string } } = {}): Promise<{ code: number; json: any; ms: number }> {
  const t0 = Date.now()
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'application/json, */*' }
    if (!opts.cert) headers.authorization = `Bearer ${opts.token ?? k.tokens.admin}`
    const tls = opts.cert ? { cert: readFileSync(opts.cert.certFile), key: readFileSync(opts.cert.keyFile) } : {}
    const req = request(`${k.url}${path}`, { ca: k.caPem, headers, agent: false, ...tls }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ code: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')), ms: Date.now() - t0 }))
    })
    req.on('error', reject)
    req.end()
  })
}

test('node IPAM assigns the next free /24 per node (dual stack), keeps given ones, can be off', async () => {
  const k = await startKubeEmulator({ ipam: { clusterCidrs: ['10.244.0.0/16', 'fd00:10:244::/56'] } })
  try {
    await k.admin.createNode({ name: 'a' })
    await k.admin.createNode({ name: 'b', podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] })
    await k.admin.createNode({ name: 'c' })
    await sleep(30) // the controller writes after the create, as kube-controller-manager does
    assert.deepEqual((await k.admin.getNode('a'))!.spec, { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'] })
    assert.deepEqual(((await k.admin.getNode('c'))!.spec as any).podCIDRs, ['10.244.2.0/24', 'fd00:10:244:2::/64'])
    await k.admin.setIpam(undefined)
    await k.admin.createNode({ name: 'manual' })
    await sleep(30)
    assert.deepEqual((await k.admin.getNode('manual'))!.spec, {})
    const set = await k.admin.setPodCidr('manual', '10.244.9.0/24')
    assert.deepEqual(set.spec, { podCIDR: '10.244.9.0/24', podCIDRs: ['10.244.9.0/24'] })
    await assert.rejects(k.admin.setPodCidr('manual', '10.244.10.0/24'), (err: any) => err.code === 422)
  } finally {
    await k.close()
  }
})

test('5,000 nodes list in well under a second; a watch sees every one of 5,000 writes', async () => {
  const k = await startKubeEmulator({ ipam: { clusterCidrs: ['10.0.0.0/8'] } })
  try {
    const nodes = Array.from({ length: 5000 }, (_, i) => ({
      name: `node-${String(i).padStart(4, '0')}`,
      annotations: { 'flannel.alpha.coreos.com/public-ip': `192.168.${i >> 8}.${i & 255}`, 'flannel.alpha.coreos.com/backend-type': 'vxlan' },
      addresses: [{ type: 'InternalIP', address: `192.168.${i >> 8}.${i & 255}` }],
    }))
    await k.admin.createNodes(nodes)
    const rv = await k.admin.resourceVersion()
    let seen = 0
    const watching = new Promise<void>((resolve, reject) => {
      const req = request(`${k.url}/api/v1/nodes?watch=true&resourceVersion=${rv}`, { ca: k.caPem, agent: false, headers: { authorization: `Bearer ${k.tokens.flannel}` } }, (res) => {
        let buf = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          buf += c
          const lines = buf.split('\n')
          buf = lines.pop()!
          seen += lines.length
          if (seen >= 5000) { req.destroy(); resolve() }
        })
      })
      req.on('error', (err) => { if (seen < 5000) reject(err) })
      req.end()
    })
    await new Promise((r) => setTimeout(r, 50))
    const list = await get(k, '/api/v1/nodes?limit=500&resourceVersion=0', { token: k.tokens.flannel })
    assert.equal(list.json.items.length, 5000)
    assert.ok(list.ms < 1000, `list took ${list.ms} ms`)
    const t0 = Date.now()
    for (let i = 0; i < 5000; i++) await k.admin.patchNode(`node-${String(i).padStart(4, '0')}`, { metadata: { annotations: { seq: String(i) } } }, { subresource: 'status' })
    await watching
    assert.equal(seen, 5000)
    assert.ok(Date.now() - t0 < 10_000)
  } finally {
    await k.close()
  }
})

test('client certificates: CN is the user, O the groups (system:masters may do everything)', async () => {
  const k = await startKubeEmulator({ clientCertAuth: true })
  try {
    const admin = k.clientCert('cert-admin', ['system:masters'])
    assert.equal((await get(k, '/api/v1/nodes', { cert: admin })).code, 200)
    const nobody = k.clientCert('nobody')
    const denied = await get(k, '/api/v1/nodes', { cert: nobody })
    assert.equal(denied.code, 403)
    assert.equal(denied.json.message, 'nodes is forbidden: User "nobody" cannot list resource "nodes" in API group "" at the cluster scope')
  } finally {
    await k.close()
  }
})

const root = process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0
test('standalone in a network namespace: served on the namespace address, admin over the unix socket', { skip: root ? false : 'needs root for ip netns' }, async () => {
  const ns = `weft-kube-${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  let k: KubeApiServer | undefined
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    execFileSync('ip', ['-n', ns, 'addr', 'add', '10.200.0.250/32', 'dev', 'lo'])
    const t0 = Date.now()
    k = await startKubeEmulator({ netns: ns, host: '10.200.0.250', port: 6443, ipam: { clusterCidrs: ['10.244.0.0/16'] } })
    assert.ok(Date.now() - t0 < 5000)
    assert.equal(k.url, 'https://10.200.0.250:6443')
    assert.ok(k.pid !== undefined)
    const node = await k.admin.createNode({ name: 'ns-node' })
    assert.equal((node.metadata as any).name, 'ns-node')
    await sleep(30) // the controller writes after the create, as kube-controller-manager does
    assert.equal(((await k.admin.getNode('ns-node'))!.spec as any).podCIDR, '10.244.0.0/24')
    await assert.rejects(k.admin.createNode({ name: 'ns-node' }), (err: any) => err.code === 409 && err.body.reason === 'AlreadyExists')
    // From inside the namespace, with the kubeconfig's CA and token (curl as a stand-in client).
    const out = execFileSync('ip', ['netns', 'exec', ns, 'curl', '-s', '--cacert', k.caFile, '-H', `Authorization: Bearer ${k.tokens.flannel}`, `${k.url}/api/v1/nodes/ns-node`], { encoding: 'utf8' })
    assert.equal(JSON.parse(out).metadata.name, 'ns-node')
    assert.deepEqual(await k.admin.requestCounts(), { 'get nodes': 1 })
    const pid = k.pid!
    await k.close()
    assert.throws(() => process.kill(pid, 0))
    assert.equal(existsSync(k.caFile), false)
  } finally {
    await k?.close()
    execFileSync('ip', ['netns', 'del', ns])
  }
})
