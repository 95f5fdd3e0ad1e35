/**
 * The host CNI plugin as the container runtime runs it: `npm run build:cni -- DIR` writes
 * DIR/flannel, DIR is the node's /opt/cni/bin (bridge and host-local linked beside it, CNI_PATH),
 * PATH holds no `node`, the working directory is no checkout, and stdin is the flannel entry of
 * deploy/kube-weft.yml's cni-conf.json. ADD puts a pod on a bridge from subnet.env, DEL undoes it.
 * The plugin is built once for the file (~5-10 s: a copy of the node binary).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { createScratchNetns, needsRoot, type ScratchNetns } from '../helpers/scratch-netns.ts'
import { run } from '../helpers/netns.ts'

const REPO = resolve(import.meta.dirname, '../..')
const DEBIAN_CNI = '/usr/lib/cni'
const skip = needsRoot() || (existsSync(join(DEBIAN_CNI, 'bridge')) ? false : `bridge plugin not found in ${DEBIAN_CNI}`)

/** Absolute path of a command on this shell's PATH (the plugin's PATH will not have it). */
function which(cmd: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (existsSync(join(dir, cmd))) return join(dir, cmd)
  throw new Error(`${cmd} not found on PATH`)
}

let work = ''
let binDir = ''

before(async () => {
  if (skip) return
  work = await mkdtemp(join(tmpdir(), 'weft-cni-host-'))
  binDir = join(work, 'opt-cni-bin')
  await run('npm', ['--prefix', REPO, 'run', '-s', 'build:cni', '--', binDir], { timeoutMs: 180_000 })
  assert.deepEqual(await readdir(binDir), ['flannel'], 'build:cni installs exactly one file')
  for (const delegate of ['bridge', 'host-local']) await symlink(join(DEBIAN_CNI, delegate), join(binDir, delegate))
})

after(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

interface PluginRun { code: number | null; out: Record<string, any> | undefined; raw: string }

/** Execs DIR/flannel in the host namespace with nothing but what a runtime passes. */
function plugin(host: ScratchNetns, env: Record<string, string>, stdin: string): Promise<PluginRun> {
  return new Promise((done, fail) => {
    const child = spawn(which('ip'), ['netns', 'exec', host.name, join(binDir, 'flannel')], {
      cwd: work,
      env: { PATH: binDir, CNI_PATH: binDir, CNI_IFNAME: 'eth0', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d })
    child.stderr.on('data', (d: Buffer) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('error', fail)
    child.once('close', (code) => {
      clearTimeout(timer)
      let out: Record<string, any> | undefined
      try { out = stdout.trim() === '' ? undefined : JSON.parse(stdout) } catch { out = undefined }
      done({ code, out, raw: stdout + stderr })
    })
    child.stdin.end(stdin)
  })
}

/** The conflist's flannel entry as a runtime hands it over: with the list's cniVersion and name. */
async function flannelEntry(): Promise<Record<string, any>> {
  const docs = parseAllDocuments(await readFile(join(REPO, 'deploy/kube-weft.yml'), 'utf8')).map((d) => d.toJS())
  const cm = docs.find((d) => d?.kind === 'ConfigMap')
  const list = JSON.parse(cm.data['cni-conf.json'])
  const entry = list.plugins.find((p: { type: string }) => p.type === 'flannel')
  return { cniVersion: list.cniVersion, name: list.name, ...entry }
}

test('the installed plugin, with no node on PATH, puts a pod on a bridge from subnet.env and DEL removes it', { skip, timeout: 120_000 }, async () => {
  assert.ok(!existsSync(join(binDir, 'node')), 'no node on the plugin PATH (PATH is the plugin directory only)')
  const host = createScratchNetns('h')
  const pod = createScratchNetns('p')
  try {
    const subnetFile = join(work, 'run-flannel', 'subnet.env')
    await mkdir(join(work, 'run-flannel'))
    await writeFile(subnetFile, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n')
    const conf = JSON.stringify({
      ...(await flannelEntry()),
      subnetFile, dataDir: join(work, 'flannel-state'),
      ipam: { dataDir: join(work, 'ipam') },
    })
    const env = { CNI_CONTAINERID: 'ctr-host-1', CNI_NETNS: `/var/run/netns/${pod.name}` }

    const version = await plugin(host, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.3.1"}')
    assert.equal(version.code, 0, version.raw)
    assert.ok(version.out?.supportedVersions.includes('0.3.1'))

    const add = await plugin(host, { ...env, CNI_COMMAND: 'ADD' }, conf)
    assert.equal(add.code, 0, add.raw)
    const address = String(add.out?.ips?.[0]?.address)
    assert.match(address, /^10\.244\.7\.\d+\/24$/)
    assert.equal(add.out?.ips?.[0]?.gateway, '10.244.7.1')
    assert.match(pod.exec('ip', ['-4', 'addr', 'show', 'eth0']), new RegExp(`inet ${address.replace(/\./g, '\\.')} `))
    assert.match(pod.exec('ip', ['link', 'show', 'eth0']), /mtu 1450 /)
    assert.match(pod.exec('ip', ['route']), /^default via 10\.244\.7\.1 /m, 'isDefaultGateway from the delegate block')
    assert.match(host.exec('ip', ['-4', 'addr', 'show', 'cni0']), /inet 10\.244\.7\.1\/24/)
    assert.deepEqual(await readdir(join(work, 'flannel-state')), ['ctr-host-1'])

    const del = await plugin(host, { ...env, CNI_COMMAND: 'DEL' }, conf)
    assert.equal(del.code, 0, del.raw)
    assert.doesNotMatch(pod.exec('ip', ['link']), /eth0/)
    assert.ok(!(await readdir(join(work, 'ipam', 'cbr0'))).includes(address.split('/')[0] as string), 'host-local released the address')
    assert.deepEqual(await readdir(join(work, 'flannel-state')), [])
  } finally {
    pod.destroy()
    host.destroy()
  }
})

test('the installed plugin reports a missing subnet.env as CNI error 11', { skip, timeout: 30_000 }, async () => {
  const host = createScratchNetns('h')
  const pod = createScratchNetns('p')
  try {
    const conf = JSON.stringify({ ...(await flannelEntry()), subnetFile: join(work, 'absent', 'subnet.env'), dataDir: join(work, 'absent-state') })
    const r = await plugin(host, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr-host-2', CNI_NETNS: `/var/run/netns/${pod.name}` }, conf)
    assert.equal(r.code, 1, r.raw)
    assert.equal(r.out?.code, 11)
    assert.doesNotMatch(pod.exec('ip', ['link']), /eth0/)
  } finally {
    pod.destroy()
    host.destroy()
  }
})
