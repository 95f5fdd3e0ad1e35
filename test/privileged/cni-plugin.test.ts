/**
 * The weft CNI plugin with the real bridge and host-local plugins (/usr/lib/cni or CNI_PATH),
 * on two "hosts" (namespaces) joined by a veth with routes to each other's pod subnet:
 * ADD gives pods addresses in the host's subnet with FLANNEL_MTU, pods reach each other across
 * hosts, CHECK passes, DEL releases the address, and a missing subnet.env is a clear error.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createScratchNetns, needsRoot, type ScratchNetns } from '../helpers/scratch-netns.ts'
import { nsSpawn, run } from '../helpers/netns.ts'

const CNI_PATH = process.env.CNI_PATH ?? '/usr/lib/cni'
const skip = needsRoot() || (existsSync(join(CNI_PATH.split(':')[0] as string, 'bridge')) ? false : `bridge plugin not found in ${CNI_PATH}`)
const MAIN = resolve(import.meta.dirname, '../../src/cni/cni-main.ts')
const REPO = resolve(import.meta.dirname, '../..')

interface CniRun { code: number | null; out: Record<string, any> | undefined; raw: string }

/** Runs the plugin as the runtime would: inside the host namespace, CNI_* env, config on stdin. */
async function cni(host: ScratchNetns, command: string, id: string, pod: ScratchNetns | undefined, conf: object): Promise<CniRun> {
  const env: Record<string, string> = { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_IFNAME: 'eth0', CNI_PATH }
  if (pod) env.CNI_NETNS = `/var/run/netns/${pod.name}`
  const r = await run('ip', ['netns', 'exec', host.name, process.execPath, '--import', 'tsx', MAIN], {
    env, input: JSON.stringify(conf), allowFailure: true, timeoutMs: 30_000,
  })
  let out: Record<string, any> | undefined
  try { out = r.stdout.trim() === '' ? undefined : JSON.parse(r.stdout) } catch { out = undefined }
  return { code: r.code, out, raw: r.stdout + r.stderr }
}

test('ADD/CHECK/DEL with the real bridge + host-local plugins across two hosts', { skip, timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-cni-'))
  const spaces: ScratchNetns[] = []
  const mk = (tag: string): ScratchNetns => {
    const ns = createScratchNetns(tag)
    spaces.push(ns)
    ns.exec('ip', ['link', 'set', 'lo', 'up'])
    return ns
  }
  process.chdir(REPO) // tsx is resolved from the repository
  try {
    const hostA = mk('a'), hostB = mk('b'), podA1 = mk('p'), podA2 = mk('p'), podB1 = mk('q')
    hostA.exec('ip', ['link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', hostB.name])
    hostA.exec('ip', ['addr', 'add', '198.18.1.1/24', 'dev', 'ul0'])
    hostB.exec('ip', ['addr', 'add', '198.18.1.2/24', 'dev', 'ul0'])
    for (const h of [hostA, hostB]) h.exec('ip', ['link', 'set', 'ul0', 'up'])
    hostA.exec('ip', ['route', 'add', '10.5.2.0/24', 'via', '198.18.1.2'])
    hostB.exec('ip', ['route', 'add', '10.5.1.0/24', 'via', '198.18.1.1'])
    const conf = (host: string, extra: object = {}) => ({
      cniVersion: '1.0.0', name: 'weft-test', type: 'weft',
      subnetFile: join(dir, host, 'subnet.env'), dataDir: join(dir, host, 'state'),
      ipam: { dataDir: join(dir, host, 'ipam') },
      delegate: { isDefaultGateway: true, hairpinMode: true },
      ...extra,
    })
    for (const [h, n] of [['a', 1], ['b', 2]] as const) {
      await run('mkdir', ['-p', join(dir, h)])
      await writeFile(join(dir, h, 'subnet.env'), `FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.${n}.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\n`)
    }

    const a1 = await cni(hostA, 'ADD', 'ctr-a1', podA1, conf('a'))
    assert.equal(a1.code, 0, a1.raw)
    const a2 = await cni(hostA, 'ADD', 'ctr-a2', podA2, conf('a'))
    const b1 = await cni(hostB, 'ADD', 'ctr-b1', podB1, conf('b'))
    assert.equal(a2.code, 0, a2.raw)
    assert.equal(b1.code, 0, b1.raw)
    const addr = (r: CniRun): string => String(r.out?.ips?.[0]?.address)
    assert.match(addr(a1), /^10\.5\.1\.\d+\/24$/)
    assert.match(addr(a2), /^10\.5\.1\.\d+\/24$/)
    assert.notEqual(addr(a1), addr(a2))
    assert.match(addr(b1), /^10\.5\.2\.\d+\/24$/)
    assert.equal(a1.out?.ips?.[0]?.gateway, '10.5.1.1')
    // FLANNEL_MTU reaches the pod; the bridge got the gateway address
    assert.match(podA1.exec('ip', ['link', 'show', 'eth0']), /mtu 1400 /)
    assert.match(hostA.exec('ip', ['-4', 'addr', 'show', 'cni0']), /inet 10\.5\.1\.1\/24/)
    assert.match(podA1.exec('ip', ['route']), /10\.5\.0\.0\/16 via 10\.5\.1\.1/)
    // FLANNEL_IPMASQ=true: the bridge plugin must not add its own masquerade rules
    assert.doesNotMatch(hostA.exec('iptables-save', ['-t', 'nat']), /CNI-/)

    // cross-host: a TCP round trip from pod A1 to pod B1 (handshake + reply prove both directions)
    const ipB1 = addr(b1).split('/')[0] as string
    const server = nsSpawn(podB1.name, [process.execPath, '-e', "require('net').createServer((s)=>s.end('pong from '+s.remoteAddress)).listen(7777,'0.0.0.0')"])
    try {
      let reply = ''
      for (let i = 0; i < 40 && !reply.startsWith('pong'); i++) {
        await new Promise((r) => setTimeout(r, 100))
        const r = await run('ip', ['netns', 'exec', podA1.name, 'bash', '-c', `exec 3<>/dev/tcp/${ipB1}/7777 && cat <&3`], { allowFailure: true, timeoutMs: 3000 })
        reply = r.stdout
      }
      // the peer saw the pod's own address: no NAT between pods
      assert.equal(reply, `pong from ${addr(a1).split('/')[0]}`)
    } finally {
      await server.stop(500)
    }

    const check = await cni(hostA, 'CHECK', 'ctr-a1', podA1, conf('a', { prevResult: a1.out }))
    assert.equal(check.code, 0, check.raw)

    const ipamDir = join(dir, 'a', 'ipam', 'weft-test')
    const ipA1 = addr(a1).split('/')[0] as string
    assert.ok((await readdir(ipamDir)).includes(ipA1))
    const del = await cni(hostA, 'DEL', 'ctr-a1', podA1, conf('a'))
    assert.equal(del.code, 0, del.raw)
    assert.ok(!(await readdir(ipamDir)).includes(ipA1), 'host-local released the address')
    assert.doesNotMatch(podA1.exec('ip', ['link']), /eth0/)
    assert.equal((await cni(hostA, 'DEL', 'ctr-a1', podA1, conf('a'))).code, 0, 'DEL is idempotent')
    // the released address is handed out again
    const again = await cni(hostA, 'ADD', 'ctr-a3', podA1, conf('a'))
    assert.equal(again.code, 0, again.raw)
  } finally {
    for (const ns of spaces) ns.destroy()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a missing subnet.env fails fast with a clear CNI error 11', { skip, timeout: 60_000 }, async () => {
  const host = createScratchNetns('a')
  const pod = createScratchNetns('p')
  process.chdir(REPO)
  try {
    const start = Date.now()
    const r = await cni(host, 'ADD', 'ctr-x', pod, { cniVersion: '1.0.0', name: 'weft-test', type: 'weft', subnetFile: '/run/weft-test-absent/subnet.env', dataDir: '/tmp/weft-test-absent' })
    assert.equal(r.code, 1)
    assert.equal(r.out?.code, 11)
    assert.match(String(r.out?.msg), /subnet\.env \/run\/weft-test-absent\/subnet\.env does not exist: weft has not set up this node's pod subnet yet/)
    assert.ok(Date.now() - start < 10_000)
    assert.doesNotMatch(pod.exec('ip', ['link']), /eth0/)
  } finally {
    host.destroy()
    pod.destroy()
  }
})
