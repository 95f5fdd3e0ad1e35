/**
 * weftd as a process (issue: core): flags and exit codes, healthz/readyz, SIGTERM leaves lease
 * and subnet.env in place, restarts keep the subnet (by PublicIP, then by subnet.env), a
 * deleted lease key is re-created, and a bad config in etcd is reported and retried.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createTestbed } from '../helpers/testbed.ts'
import { WEFTD, eventually, startWeftd, startWeftdReady } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false
const ALLOC = { Network: '10.5.0.0/16', Backend: { Type: 'alloc' } }

test('bad flags exit 2 naming the flag; --version and --help exit 0', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [WEFTD, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })
  const bad = run('--iface-regx=eth.*')
  assert.equal(bad.status, 2)
  assert.ok(bad.stderr.startsWith('weftd: --iface-regx: unknown flag; did you mean --iface-regex?\n\nUsage: weftd [OPTION]...\n'), bad.stderr)
  assert.match(bad.stderr, /--metrics-addr=<string>/, 'the unknown flag is answered with the flag list')
  const range = run('--subnet-lease-renew-margin=0')
  assert.equal(range.status, 2)
  assert.match(range.stderr, /--subnet-lease-renew-margin: must be in 1\.\.1439, got 0/)
  const env = spawnSync(process.execPath, [WEFTD], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', FLANNELD_PUBLIC_IP: 'fd00::1' } })
  assert.equal(env.status, 2)
  assert.match(env.stderr, /FLANNELD_PUBLIC_IP: must be an IPv4 address/)
  assert.doesNotMatch(bad.stderr + range.stderr + env.stderr, /\n\s+at /, 'no stack trace')
  const version = run('--version')
  assert.equal(version.status, 0)
  assert.match(version.stderr, /^v\d+\.\d+\.\d+\n$/)
  const help = run('-help')
  assert.equal(help.status, 0)
  assert.match(help.stdout, /^Usage: weftd \[OPTION\]\.\.\./)
  assert.match(help.stdout, /--etcd-endpoints/)
})

test('weftd lifecycle with alloc: ready, SIGTERM keeps state, restart keeps subnet, a deleted key is re-created', { skip, timeout: 120_000 }, async () => {
  const bed = await createTestbed({ hosts: 1 })
  try {
    const host = bed.hosts[0]!
    await bed.putNetworkConfig(ALLOC)
    const first = await startWeftdReady(bed, host, ['--healthz-ip=127.0.0.1', '--healthz-port=8471'])
    const subnet = first.env.FLANNEL_SUBNET
    assert.match(subnet ?? '', /^10\.5\.\d+\.1\/24$/)
    const probe = async (path: string) => (await host.run([process.execPath, '-e', `fetch('http://127.0.0.1:8471${path}').then(async r => console.log(r.status, await r.text()))`])).stdout.trim()
    assert.equal(await eventually('readyz 200', async () => { const r = await probe('/readyz'); return r.startsWith('200') && r }), '200 flanneld is ready')
    assert.equal(await probe('/healthz'), '200 flanneld is running')

    await first.proc.stop()
    assert.equal((await first.proc.exited).code, 0, first.proc.output())
    assert.match(first.proc.output(), /exiting cleanly/)
    const leases = await bed.getLeases()
    assert.equal(leases.length, 1, 'the lease stays in etcd after SIGTERM')
    assert.equal(readFileSync(first.subnetFile, 'utf8').includes(`FLANNEL_SUBNET=${subnet}`), true, 'subnet.env stays')

    // Restart: the lease is found again by PublicIP.
    const second = await startWeftdReady(bed, host)
    assert.equal(second.env.FLANNEL_SUBNET, subnet)
    // Deleting our key: weftd re-creates it and keeps running (flanneld exits and waits for its supervisor).
    const key = `/coreos.com/network/subnets/${leases[0]!.subnet.replace('/', '-')}`
    await bed.etcdctl('del', key)
    await eventually('key re-created', async () => (await bed.getLeases()).some((l) => l.subnet === leases[0]!.subnet && l.attrs['PublicIP'] === host.underlayIp))
    assert.ok(second.proc.isRunning(), second.proc.output())
    await second.proc.stop()

    // Restart with the key gone: the subnet comes back from subnet.env.
    await bed.etcdctl('del', key)
    const third = await startWeftdReady(bed, host)
    assert.equal(third.env.FLANNEL_SUBNET, subnet)
    await third.proc.stop()
  } finally {
    await bed.destroy()
  }
})

test('a bad network config in etcd is reported with the field and retried until fixed', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 1 })
  try {
    const host = bed.hosts[0]!
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', SubnetLen: 31, Backend: { Type: 'alloc' } })
    const run = startWeftd(bed, host)
    await eventually('the config error in the log', async () => /SubnetLen/.test(run.proc.output()) && /less than \/31/.test(run.proc.output()), 10_000)
    assert.ok(run.proc.isRunning(), 'weftd keeps retrying instead of exiting')
    await bed.putNetworkConfig(ALLOC)
    await eventually('subnet.env after the fix', async () => { try { return readFileSync(run.subnetFile, 'utf8').includes('FLANNEL_SUBNET=10.5.') } catch { return false } }, 10_000)
    await run.proc.stop()
  } finally {
    await bed.destroy()
  }
})
