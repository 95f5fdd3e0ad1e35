/**
 * The demo (`demo/demo.ts --once`) end to end. A stand-in weftd (a host-gw in 30 lines: lease
 * via etcdctl, subnet.env, one route per peer lease) checks the demo's own sequence without
 * depending on the daemon; the real weftd runs when it has been built.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { listNetns } from '../helpers/netns.ts'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const skip = process.getuid?.() !== 0
  ? 'needs root (network namespaces)'
  : spawnSync('sh', ['-c', 'command -v ping && command -v etcd && command -v etcdctl'], { stdio: 'ignore' }).status !== 0
    ? 'needs ping (iputils-ping), etcd and etcdctl'
    : false

// Flags as flanneld gets them; the lease is 10.5.<host number>.0/24 with flannel's key and JSON shape.
const FAKE_WEFTD = `
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
const flag = (n) => process.argv.find((a) => a.startsWith('--' + n + '='))?.slice(n.length + 3)
if (process.env.FAKE_FAIL) { console.error('fake weftd: failing on purpose'); process.exit(3) }
const ep = flag('etcd-endpoints'), file = flag('subnet-file'), iface = flag('iface')
const ctl = (...a) => execFileSync('etcdctl', ['--endpoints=' + ep, ...a], { env: { ...process.env, ETCDCTL_API: '3' } }).toString()
const me = /inet (\\S+)\\//.exec(execFileSync('ip', ['-4', 'addr', 'show', 'dev', iface]).toString())[1]
const n = me.split('.')[3]
ctl('put', '/coreos.com/network/subnets/10.5.' + n + '.0-24', JSON.stringify({ PublicIP: me, BackendType: process.env.FAKE_TYPE }))
mkdirSync(dirname(file), { recursive: true })
writeFileSync(file, 'FLANNEL_NETWORK=10.5.0.0/16\\nFLANNEL_SUBNET=10.5.' + n + '.1/24\\nFLANNEL_MTU=1500\\nFLANNEL_IPMASQ=false\\n')
console.log('fake weftd: lease 10.5.' + n + '.0/24 for ' + me)
setInterval(() => {
  const doc = JSON.parse(ctl('get', '--prefix', '/coreos.com/network/subnets/', '-w', 'json'))
  for (const kv of doc.kvs ?? []) {
    const key = Buffer.from(kv.key, 'base64').toString().split('/').pop().replace('-', '/')
    const peer = JSON.parse(Buffer.from(kv.value, 'base64').toString()).PublicIP
    if (peer !== me) execFileSync('ip', ['route', 'replace', key, 'via', peer])
  }
}, 300)
`

interface DemoRun { code: number | null; out: string }

function runDemo(args: string[], env: Record<string, string>): Promise<DemoRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repo, 'demo', 'demo.ts'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr.on('data', (c: Buffer) => { out += c.toString() })
    child.once('exit', (code) => resolve({ code, out }))
  })
}

/** Namespaces still present of the testbed the demo printed (other tests may run testbeds concurrently). */
async function leftoverOf(out: string): Promise<string[]> {
  const prefix = /netns (wt[0-9a-z]+)-h1 /.exec(out)?.[1]
  assert.ok(prefix, `no testbed prefix in demo output:\n${out}`)
  return (await listNetns()).filter((n) => n.startsWith(`${prefix}-`))
}

test('demo --once with a stand-in host-gw weftd: leases, pods, full ping matrix, cleanup', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-demo-test-'))
  try {
    const fake = join(dir, 'fake-weftd.mjs')
    writeFileSync(fake, FAKE_WEFTD)
    const r = await runDemo(['--once', '--backend=host-gw', `--weftd=${fake}`, '--timeout=20'], { FAKE_TYPE: 'host-gw' })
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /creating a 3-host testbed/)
    assert.match(r.out, /h1: FLANNEL_SUBNET=10\.5\.1\.1\/24/)
    // From `weft leases` or the demo's own table: subnet, public IP, backend in that order.
    assert.match(r.out, /10\.5\.1\.0\/24\s+10\.200\.0\.1\s+host-gw/)
    assert.match(r.out, /h3: pod \S+ eth0 10\.5\.3\.2/)
    // Full matrix: every off-diagonal cell answered.
    assert.equal((r.out.match(/ok \d+\.\d+ms/g) ?? []).length, 6, r.out)
    assert.match(r.out, /all steps passed/)
    assert.deepEqual(await leftoverOf(r.out), [])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('demo --once exits non-zero with weftd output when weftd fails, and cleans up', { skip, timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-demo-test-'))
  try {
    const fake = join(dir, 'fake-weftd.mjs')
    writeFileSync(fake, FAKE_WEFTD)
    const r = await runDemo(['--once', `--weftd=${fake}`, '--timeout=10'], { FAKE_FAIL: '1', FAKE_TYPE: 'alloc' })
    assert.equal(r.code, 1, r.out)
    assert.match(r.out, /process exited before writing/)
    assert.match(r.out, /failing on purpose/)
    assert.match(r.out, /1 step\(s\) failed/)
    assert.deepEqual(await leftoverOf(r.out), [])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('demo --once fails the lease step on a wrong BackendType and shows weftd logs', { skip, timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-demo-test-'))
  try {
    const fake = join(dir, 'fake-weftd.mjs')
    writeFileSync(fake, FAKE_WEFTD)
    const r = await runDemo(['--once', '--backend=host-gw', `--weftd=${fake}`, '--hosts=2', '--timeout=10'], { FAKE_TYPE: 'vxlan' })
    assert.equal(r.code, 1, r.out)
    assert.match(r.out, /lease BackendType is "vxlan", expected "host-gw"/)
    assert.match(r.out, /1 step\(s\) failed: lease table/)
    assert.match(r.out, /==> weftd on h2 \(last lines\):\n\s+fake weftd: lease 10\.5\.2\.0\/24 for 10\.200\.0\.2/)
    assert.deepEqual(await leftoverOf(r.out), [])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('demo rejects a bad flag with usage (exit 2)', { timeout: 30_000 }, async () => {
  const r = await runDemo(['--hosts=0'], {})
  assert.equal(r.code, 2)
  assert.match(r.out, /--hosts must be an integer in 1\.\.9: 0/)
})

const builtSkip = skip || (existsSync(join(repo, 'dist', 'weftd.cjs')) || existsSync(join(repo, 'src', 'cli', 'weftd.ts')) ? false : 'no weftd yet (neither dist/weftd.cjs nor src/cli/weftd.ts)')

test('demo --once with the real weftd and the alloc backend', { skip: builtSkip, timeout: 120_000 }, async () => {
  const r = await runDemo(['--once', '--backend=alloc'], {})
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /all steps passed/)
  assert.match(r.out, /10\.5\.\d+\.0\/24\s+10\.200\.0\.3\s/)
  assert.deepEqual(await leftoverOf(r.out), [])
})

for (const backend of ['host-gw', 'vxlan']) {
  test(`demo --once with the real weftd and ${backend}: every pod reaches every other pod`, { skip: builtSkip, timeout: 120_000 }, async () => {
    // vxlan is the default backend: run it without --backend.
    const r = await runDemo(['--once', ...(backend === 'vxlan' ? [] : [`--backend=${backend}`]), '--timeout=20'], {})
    assert.equal(r.code, 0, r.out)
    assert.ok(r.out.includes(`"Backend":{"Type":"${backend}"}`), r.out)
    assert.equal((r.out.match(/ok \d+\.\d+ms/g) ?? []).length, 6, r.out)
    assert.match(r.out, /all steps passed/)
    assert.deepEqual(await leftoverOf(r.out), [])
  })
}
