import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile, readdir, chmod, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCniPlugin } from '../../../src/cni/cni-plugin.ts'
import type { PluginExec } from '../../../src/cni/plugin-exec.ts'
import { FakeClock } from '../../../src/util/clock.ts'

const SUBNET_ENV = 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_IPV6_NETWORK=fd00:10::/56\nFLANNEL_IPV6_SUBNET=fd00:10:0:48::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n'

async function fixture(t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'weft-cni-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const bin = join(dir, 'bin')
  await mkdir(bin)
  for (const p of ['bridge', 'host-local']) {
    await writeFile(join(bin, p), '#!/bin/sh\nexit 0\n')
    await chmod(join(bin, p), 0o755)
  }
  const calls: { path: string; env: Record<string, string>; conf: Record<string, unknown> }[] = []
  let reply = { code: 0, stdout: '{"cniVersion":"1.0.0","ips":[{"address":"10.5.72.2/24"}]}', stderr: '' }
  const exec: PluginExec = async (path, env, stdin) => {
    calls.push({ path, env: { ...env }, conf: JSON.parse(stdin) })
    return reply
  }
  const subnetFile = join(dir, 'subnet.env')
  const conf = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', type: 'weft', subnetFile, dataDir: join(dir, 'data'), ...extra })
  const env = (cmd: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0', CNI_PATH: `/nonexistent:${bin}`, PATH: '/usr/bin' })
  return { dir, bin, calls, exec, subnetFile, conf, env, setReply: (r: typeof reply) => (reply = r) }
}

test('ADD delegates to bridge with host-local ranges, routes, MTU and the flannel ipMasq rule', async (t) => {
  const f = await fixture(t)
  await writeFile(f.subnetFile, SUBNET_ENV)
  const out = await runCniPlugin(f.env('ADD'), f.conf({ delegate: { hairpinMode: true, isDefaultGateway: true } }), { exec: f.exec })
  assert.equal(out.exitCode, 0)
  assert.match(out.stdout, /10\.5\.72\.2/)
  const call = f.calls[0]
  assert.equal(call?.path, join(f.bin, 'bridge'))
  assert.equal(call?.env.CNI_COMMAND, 'ADD')
  assert.deepEqual(call?.conf, {
    hairpinMode: true, isDefaultGateway: true, name: 'cbr0', type: 'bridge', ipMasq: false, mtu: 1450, isGateway: true, cniVersion: '1.0.0',
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.5.72.0/24' }], [{ subnet: 'fd00:10:0:48::/64' }]], routes: [{ dst: '10.5.0.0/16', gw: '10.5.72.1' }, { dst: 'fd00:10::/56', gw: 'fd00:10:0:48::1' }] },
  })
  assert.deepEqual(await readdir(join(f.dir, 'data')), ['c1'])
})

test('FLANNEL_IPMASQ=false makes the bridge masquerade; operator keys win', async (t) => {
  const f = await fixture(t)
  await writeFile(f.subnetFile, SUBNET_ENV.replace('FLANNEL_IPMASQ=true', 'FLANNEL_IPMASQ=false'))
  await runCniPlugin(f.env('ADD'), f.conf({ delegate: { mtu: 1400 }, ipam: { dataDir: '/tmp/x', routes: [{ dst: '0.0.0.0/0' }] } }), { exec: f.exec })
  const conf = f.calls[0]?.conf as Record<string, any>
  assert.equal(conf.ipMasq, true)
  assert.equal(conf.mtu, 1400)
  assert.equal(conf.ipam.dataDir, '/tmp/x')
  assert.deepEqual(conf.ipam.routes, [{ dst: '0.0.0.0/0' }, { dst: '10.5.0.0/16', gw: '10.5.72.1' }, { dst: 'fd00:10::/56', gw: 'fd00:10:0:48::1' }])
})

test('a non-bridge delegate gets flannel\'s plain dst routes', async (t) => {
  const f = await fixture(t)
  await writeFile(f.subnetFile, SUBNET_ENV)
  await writeFile(join(f.bin, 'ptp'), '')
  await chmod(join(f.bin, 'ptp'), 0o755)
  await runCniPlugin(f.env('ADD'), f.conf({ delegate: { type: 'ptp' } }), { exec: f.exec })
  const conf = f.calls[0]?.conf as Record<string, any>
  assert.equal(conf.isGateway, undefined)
  assert.deepEqual(conf.ipam.routes, [{ dst: '10.5.0.0/16' }, { dst: 'fd00:10::/56' }])
})

test('missing subnet.env fails fast with error 11 and a clear message, and nothing is delegated', async (t) => {
  const f = await fixture(t)
  const out = await runCniPlugin(f.env('ADD'), f.conf(), { exec: f.exec })
  assert.equal(out.exitCode, 1)
  const err = JSON.parse(out.stdout)
  assert.equal(err.code, 11)
  assert.match(err.msg, /subnet\.env .* does not exist: weft has not set up this node's pod subnet yet/)
  assert.equal(f.calls.length, 0)
})

test('with subnetFileWaitSeconds the plugin waits for subnet.env to appear', async (t) => {
  const f = await fixture(t)
  const clock = new FakeClock()
  const run = runCniPlugin(f.env('ADD'), f.conf({ subnetFileWaitSeconds: 5 }), { exec: f.exec, clock })
  await new Promise((r) => setTimeout(r, 20))
  await clock.advance(200)
  await writeFile(f.subnetFile, SUBNET_ENV)
  for (let i = 0; i < 50 && f.calls.length === 0; i++) {
    await clock.advance(200)
    await new Promise((r) => setTimeout(r, 5))
  }
  assert.equal((await run).exitCode, 0)
  assert.equal(f.calls.length, 1)
})

test('waiting gives up at the deadline with the same error naming the wait', async (t) => {
  const f = await fixture(t)
  const clock = new FakeClock()
  const run = runCniPlugin(f.env('ADD'), f.conf({ subnetFileWaitSeconds: 1 }), { exec: f.exec, clock })
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 5))
    await clock.advance(200)
  }
  const out = await run
  assert.match(JSON.parse(out.stdout).msg, /after waiting 1s/)
})

test('DEL uses the saved config (even with subnet.env gone) and removes it; a second DEL succeeds', async (t) => {
  const f = await fixture(t)
  await writeFile(f.subnetFile, SUBNET_ENV)
  await runCniPlugin(f.env('ADD'), f.conf(), { exec: f.exec })
  await rm(f.subnetFile)
  const del = await runCniPlugin(f.env('DEL'), f.conf(), { exec: f.exec })
  assert.equal(del.exitCode, 0)
  assert.equal(f.calls[1]?.env.CNI_COMMAND, 'DEL')
  assert.deepEqual(f.calls[1]?.conf, f.calls[0]?.conf)
  assert.deepEqual(await readdir(join(f.dir, 'data')), [])
  assert.equal((await runCniPlugin(f.env('DEL'), f.conf(), { exec: f.exec })).exitCode, 0)
  assert.equal(f.calls.length, 2)
})

test('CHECK passes prevResult to the delegate; without ADD it is an error', async (t) => {
  const f = await fixture(t)
  const noAdd = await runCniPlugin(f.env('CHECK'), f.conf(), { exec: f.exec })
  assert.equal(JSON.parse(noAdd.stdout).code, 7)
  await writeFile(f.subnetFile, SUBNET_ENV)
  await runCniPlugin(f.env('ADD'), f.conf(), { exec: f.exec })
  const prevResult = { cniVersion: '1.0.0', ips: [{ address: '10.5.72.2/24' }] }
  const out = await runCniPlugin(f.env('CHECK'), f.conf({ prevResult }), { exec: f.exec })
  assert.equal(out.exitCode, 0)
  assert.deepEqual(f.calls[1]?.conf.prevResult, prevResult)
})

test('a failing delegate ADD is relayed and its saved config dropped', async (t) => {
  const f = await fixture(t)
  await writeFile(f.subnetFile, SUBNET_ENV)
  f.setReply({ code: 1, stdout: '{"code":7,"msg":"bad bridge"}', stderr: '' })
  const out = await runCniPlugin(f.env('ADD'), f.conf(), { exec: f.exec })
  assert.equal(out.exitCode, 1)
  assert.equal(JSON.parse(out.stdout).msg, 'bad bridge')
  assert.deepEqual(await readdir(join(f.dir, 'data')), [])
})

test('VERSION, bad command, bad env, bad JSON and bad version give spec error codes', async (t) => {
  const f = await fixture(t)
  const v = await runCniPlugin({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}')
  assert.deepEqual(JSON.parse(v.stdout), { cniVersion: '0.4.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'] })
  const code = async (env: Record<string, string>, stdin: string) => JSON.parse((await runCniPlugin(env, stdin, { exec: f.exec })).stdout).code
  assert.equal(await code({ CNI_COMMAND: 'GC2' }, f.conf()), 4)
  assert.equal(await code({ ...f.env('ADD'), CNI_NETNS: '' }, f.conf()), 4)
  assert.equal(await code({ ...f.env('ADD'), CNI_CONTAINERID: '../etc' }, f.conf()), 4)
  assert.equal(await code(f.env('ADD'), '{nope'), 6)
  assert.equal(await code(f.env('ADD'), f.conf({ cniVersion: '9.9.9' })), 1)
  assert.equal(await code(f.env('ADD'), f.conf({ name: 3 })), 7)
  await writeFile(f.subnetFile, SUBNET_ENV)
  const missing = await runCniPlugin({ ...f.env('ADD'), CNI_PATH: '/nonexistent' }, f.conf({ delegate: { type: 'no-such-plugin' } }), { exec: f.exec })
  assert.equal(JSON.parse(missing.stdout).code, 100)
  assert.match(JSON.parse(missing.stdout).msg, /"no-such-plugin" in \/nonexistent:\/opt\/cni\/bin:\/usr\/lib\/cni/)
})

test('flannel-cni rules: incomplete subnet.env names the missing keys; delegate may not set name or ipam', async (t) => {
  const f = await fixture(t)
  await writeFile(f.subnetFile, 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\n')
  const incomplete = JSON.parse((await runCniPlugin(f.env('ADD'), f.conf(), { exec: f.exec })).stdout)
  assert.equal(incomplete.code, 7)
  assert.match(incomplete.msg, /subnet\.env .* is missing FLANNEL_MTU, FLANNEL_IPMASQ$/)
  await writeFile(f.subnetFile, SUBNET_ENV)
  for (const delegate of [{ name: 'x' }, { ipam: {} }, { type: 5 }]) {
    const out = JSON.parse((await runCniPlugin(f.env('ADD'), f.conf({ delegate }), { exec: f.exec })).stdout)
    assert.equal(out.code, 7, JSON.stringify(delegate))
  }
  assert.equal(f.calls.length, 0)
})

test('several comma-separated networks each get a route; runtimeConfig is passed on', async (t) => {
  const f = await fixture(t)
  await writeFile(f.subnetFile, 'FLANNEL_NETWORK=10.5.0.0/16,10.6.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n')
  await runCniPlugin(f.env('ADD'), f.conf({ runtimeConfig: { portMappings: [] } }), { exec: f.exec })
  const conf = f.calls[0]?.conf as Record<string, any>
  assert.deepEqual(conf.ipam.routes.map((r: { dst: string }) => r.dst), ['10.5.0.0/16', '10.6.0.0/16'])
  assert.deepEqual(conf.runtimeConfig, { portMappings: [] })
})

test('DEL with a corrupt saved config succeeds and drops it (flannel behaviour)', async (t) => {
  const f = await fixture(t)
  await mkdir(join(f.dir, 'data'))
  await writeFile(join(f.dir, 'data', 'c1'), '{broken')
  const out = await runCniPlugin(f.env('DEL'), f.conf(), { exec: f.exec })
  assert.equal(out.exitCode, 0)
  assert.deepEqual(await readdir(join(f.dir, 'data')), [])
  assert.equal(f.calls.length, 0)
})
