/**
 * The N-host testbed helper itself: underlay reachability, etcd from every host, routing between
 * segments, pods behind cni0, and that nothing is left behind, also when a test body throws.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createTestbed, defaultPrefix, underlayV4, underlayV6, type Testbed } from '../helpers/testbed.ts'
import { listNetns, pingUntil } from '../helpers/netns.ts'
import { addPod, parseSubnetEnv } from '../helpers/pods.ts'

const skip = process.getuid?.() !== 0
  ? 'needs root (network namespaces)'
  : spawnSync('sh', ['-c', 'command -v ping && command -v etcd && command -v etcdctl'], { stdio: 'ignore' }).status !== 0
    ? 'needs ping (iputils-ping), etcd and etcdctl'
    : false

const ping = (bed: Testbed, from: number, to: string): Promise<unknown> =>
  bed.hosts[from]!.exec('ping', '-c1', '-W2', to)

async function leftovers(prefix: string): Promise<string[]> {
  return (await listNetns()).filter((n) => n.startsWith(`${prefix}-`))
}

test('3 hosts on one segment: underlay pings, etcd from every host, no default route', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 3 })
  const prefix = bed.prefix
  try {
    assert.deepEqual(bed.hosts.map((h) => h.underlayIp), ['10.200.0.1', '10.200.0.2', '10.200.0.3'])
    assert.equal(bed.etcdEndpoint, 'http://10.200.0.250:2379')
    for (const a of bed.hosts) {
      for (const b of bed.hosts) if (a !== b) await ping(bed, a.index, b.underlayIp)
      const health = await a.run(['etcdctl', `--endpoints=${bed.etcdEndpoint}`, 'endpoint', 'health'], { env: { ETCDCTL_API: '3' } })
      assert.match(health.stdout + health.stderr, /is healthy/)
      // Never a route out of the machine: only the connected underlay route.
      const routes = (await a.exec('ip', 'route')).stdout
      assert.doesNotMatch(routes, /default/)
      assert.equal((await a.exec('sysctl', '-n', 'net.ipv4.ip_forward')).stdout.trim(), '1')
      assert.match((await a.exec('ip', '-br', 'addr', 'show', 'dev', 'eth0')).stdout, /10\.200\.0\.\d+\/24/)
    }
    // A host on another (non-existent) network is unreachable: there is nowhere to route it.
    const r = await bed.hosts[0]!.run(['ping', '-c1', '-W1', '10.201.0.1'], { allowFailure: true })
    assert.notEqual(r.code, 0)

    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'alloc' } })
    assert.equal((await bed.etcdctl('get', '--print-value-only', '/coreos.com/network/config')).trim(), '{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
    await bed.etcdctl('put', '/coreos.com/network/subnets/10.5.72.0-24', '{"PublicIP":"10.200.0.1","BackendType":"alloc"}')
    const leases = await bed.getLeases()
    assert.deepEqual(leases, [{ subnet: '10.5.72.0/24', attrs: { PublicIP: '10.200.0.1', BackendType: 'alloc' }, etcdLease: '0' }])
  } finally {
    await bed.destroy()
  }
  assert.deepEqual(await leftovers(prefix), [])
  assert.equal(existsSync(bed.workDir), false)
  await bed.destroy() // idempotent
})

test('2 segments joined by a router, dual-stack', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 3, segments: 2, ipv6: true })
  try {
    const [h1, h2, h3] = bed.hosts as [typeof bed.hosts[0], typeof bed.hosts[0], typeof bed.hosts[0]]
    assert.deepEqual(bed.hosts.map((h) => h.segment), [0, 0, 1])
    assert.equal(h3.underlayIp, '10.200.1.3')
    assert.equal(h3.underlayIpv6, 'fd00:200:1::3')
    await ping(bed, 0, h3.underlayIp)
    await ping(bed, 2, h1.underlayIpv6!)
    await ping(bed, 2, h2.underlayIp)
    // Cross-segment traffic goes through the router (one hop), same-segment traffic does not.
    assert.match((await h1.exec('ip', 'route', 'get', h3.underlayIp)).stdout, /via 10\.200\.0\.254/)
    assert.doesNotMatch((await h1.exec('ip', 'route', 'get', h2.underlayIp)).stdout, /via/)
    const tr = await h1.exec('ping', '-c1', '-W2', h3.underlayIp)
    assert.match(tr.stdout, /ttl=63/)
    // etcd sits on segment 0 and is reachable from segment 1 too.
    const health = await h3.run(['etcdctl', `--endpoints=${bed.etcdEndpoint}`, 'endpoint', 'health'], { env: { ETCDCTL_API: '3' } })
    assert.match(health.stdout + health.stderr, /is healthy/)
  } finally {
    await bed.destroy()
  }
  assert.deepEqual(await leftovers(bed.prefix), [])
})

test('pods behind cni0 reach each other across hosts with host-gw style routes', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 2, etcd: false })
  try {
    const [h1, h2] = bed.hosts as [typeof bed.hosts[0], typeof bed.hosts[0]]
    const env1 = parseSubnetEnv('FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1500\n')
    assert.equal(env1.FLANNEL_SUBNET, '10.5.72.1/24')
    const p1 = await addPod(h1, { name: 'pod', subnet: env1.FLANNEL_SUBNET!, mtu: 1450, ipv6Subnet: 'fd00:10:5:48::1/64' })
    const p2 = await addPod(h2, { name: 'pod', subnet: '10.5.9.1/24', mtu: 1450 })
    const p3 = await addPod(h2, { name: 'pod2', subnet: '10.5.9.1/24', mtu: 1450 })
    assert.deepEqual([p1.ip, p1.gateway, p1.ipv6, p2.ip, p3.ip], ['10.5.72.2', '10.5.72.1', 'fd00:10:5:48::2', '10.5.9.2', '10.5.9.3'])
    assert.match((await p1.exec('ip', 'link', 'show', 'dev', 'eth0')).stdout, /mtu 1450/)
    assert.match((await p1.exec('ip', 'route')).stdout, /default via 10\.5\.72\.1 dev eth0/)
    // Without routes between hosts the pods cannot reach each other.
    const blocked = await pingUntil(p1.netns, p2.ip, { timeoutMs: 600, intervalMs: 100 })
    assert.equal(blocked.ok, false)
    assert.ok(blocked.attempts >= 1)
    await h1.exec('ip', 'route', 'add', '10.5.9.0/24', 'via', h2.underlayIp)
    await h2.exec('ip', 'route', 'add', '10.5.72.0/24', 'via', h1.underlayIp)
    const through = await pingUntil(p1.netns, p2.ip, { timeoutMs: 5000 })
    assert.equal(through.ok, true, through.lastOutput)
    assert.ok(through.rttMs !== undefined && through.rttMs > 0)
    await p3.exec('ping', '-c1', '-W2', p1.ip)
    await p2.exec('ping', '-c1', '-W2', p3.ip)
    assert.ok(bed.namespaces().includes(`${h1.netns}-pod`))
  } finally {
    await bed.destroy()
  }
  assert.deepEqual(await leftovers(bed.prefix), [])
})

test('destroy runs when the test body throws, and on process exit', { skip, timeout: 60_000 }, async () => {
  const prefix = defaultPrefix()
  await assert.rejects(async () => {
    const bed = await createTestbed({ hosts: 2, prefix, etcd: false })
    try {
      const sleeper = bed.hosts[0]!.spawn(['sleep', '300'])
      assert.equal(sleeper.isRunning(), true)
      // `ip netns exec` and `setpriv` exec in place: the PID is the command itself, so stop() hits exactly it.
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(readFileSync(`/proc/${sleeper.pid}/comm`, 'utf8'), 'sleep\n')
      const other = bed.hosts[1]!.spawn(['sleep', '300'])
      await sleeper.stop()
      assert.equal((await sleeper.exited).signal, 'SIGTERM')
      assert.equal(other.isRunning(), true)
      assert.equal((await leftovers(prefix)).length, 3)
      throw new Error('test body failed')
    } finally {
      await bed.destroy()
    }
  }, /test body failed/)
  assert.deepEqual(await leftovers(prefix), [])

  // A child process that creates a testbed and exits (or throws) without destroy leaves nothing.
  const script = `
    import { createTestbed } from ${JSON.stringify(new URL('../helpers/testbed.ts', import.meta.url).href)}
    const bed = await createTestbed({ hosts: 2, etcd: false })
    bed.hosts[0].spawn(['sleep', '300'])
    console.log(bed.prefix)
    throw new Error('crash without destroy')`
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
  assert.notEqual(child.status, 0)
  const childPrefix = child.stdout.trim()
  assert.match(childPrefix, /^wt[0-9a-z]+t0$/, child.stderr)
  assert.deepEqual(await leftovers(childPrefix), [])
})

test('SIGTERM during a run removes the testbed', { skip, timeout: 60_000 }, async () => {
  const { spawn } = await import('node:child_process')
  const script = `
    import { createTestbed } from ${JSON.stringify(new URL('../helpers/testbed.ts', import.meta.url).href)}
    const bed = await createTestbed({ hosts: 2 })
    console.log(bed.prefix)
    setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const prefix = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (c: Buffer) => resolve(c.toString().trim()))
    child.once('exit', () => reject(new Error('child exited before creating the testbed')))
  })
  assert.equal((await leftovers(prefix)).length, 4)
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  child.kill('SIGTERM')
  assert.ok([130, 143].includes((await exited) ?? -1), "exits through the cleanup handler")
  assert.deepEqual(await leftovers(prefix), [])
})

test('options are validated before anything is created', async () => {
  await assert.rejects(createTestbed({ hosts: 0 }), /hosts must be an integer in 1\.\.200: 0/)
  await assert.rejects(createTestbed({ hosts: 2, segments: 0 }), /segments must be an integer in 1\.\.50: 0/)
  await assert.rejects(createTestbed({ hosts: 2, segments: 2, hostSegments: [0, 2] }), /hostSegments must give a segment in 0\.\.1 for each of the 2 hosts/)
  await assert.rejects(createTestbed({ hosts: 1, prefix: 'Bad-Prefix' }), /prefix must be 1\.\.20 lower-case letters or digits: Bad-Prefix/)
  assert.match(defaultPrefix(), /^wt[0-9a-z]+t[0-9a-z]+$/)
  assert.equal(underlayV4(1, 3), '10.200.1.3')
  assert.equal(underlayV6(0, 250), 'fd00:200::250')
  assert.equal(underlayV6(12, 254), 'fd00:200:12::254')
})

test('explicit hostSegments place hosts', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 3, segments: 2, hostSegments: [1, 0, 1], etcd: false })
  try {
    assert.deepEqual(bed.hosts.map((h) => h.underlayIp), ['10.200.1.1', '10.200.0.2', '10.200.1.3'])
    assert.equal(bed.etcdEndpoint, '')
    await assert.rejects(bed.etcdctl('get', 'x'), /etcd: false/)
    await ping(bed, 0, '10.200.1.3')
    await ping(bed, 0, '10.200.0.2')
  } finally {
    await bed.destroy()
  }
})
