/**
 * Acceptance (issue 17): `weft doctor` on a real 3-host vxlan cluster. Healthy: exit 0, nothing
 * found, on every host. Then each flannel failure is made on a host the way users hit it, and
 * the doctor on the host concerned names it (exit 1); each break is undone before the next, so
 * one cluster serves every check.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createTestbed, type Testbed, type TestHost } from '../helpers/testbed.ts'
import { WEFT, leaseKey, startCluster, startWeftdReady, type ReadyWeftd } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

interface Report { ok: boolean; host: string; findings: Array<{ code: string; severity: string; problem: string; fix: string }> }

async function doctor(bed: Testbed, run: ReadyWeftd, extra: readonly string[] = []): Promise<{ code: number | null; report: Report; stderr: string }> {
  const r = await run.host.run([process.execPath, WEFT, 'doctor', '--json', `--etcd-endpoints=${bed.etcdEndpoint}`, ...(extra.some((a) => a.startsWith('--iface')) ? [] : ['--iface=eth0']), `--subnet-file=${run.subnetFile}`, ...extra], { allowFailure: true, timeoutMs: 30_000 })
  let report: Report
  try { report = JSON.parse(r.stdout) as Report } catch { throw new Error(`doctor printed no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`) }
  return { code: r.code, report, stderr: r.stderr }
}

const codes = (r: Report): string[] => [...new Set(r.findings.map((f) => f.code))].sort()

test('weft doctor: healthy cluster, then each failure found on the host concerned', { skip, timeout: 240_000 }, async (t) => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } })
    const runs = await startCluster(bed)
    const [r1, r2, r3] = runs as [ReadyWeftd, ReadyWeftd, ReadyWeftd]
    const [h1, h2, h3] = bed.hosts as [TestHost, TestHost, TestHost]

    await t.test('healthy: exit 0 and no finding on every host', async () => {
      const results = await Promise.all(runs.map((r) => doctor(bed, r)))
      for (const [i, d] of results.entries()) {
        assert.deepEqual(d.report.findings, [], `h${i + 1}: ${JSON.stringify(d.report.findings)}`)
        assert.equal(d.code, 0)
        assert.equal(d.report.ok, true)
      }
    })

    await t.test('vxlan port blocked on h1, flannel.1 MTU lowered on h2, subnet.env removed on h3', async () => {
      const saved = readFileSync(r3.subnetFile, 'utf8')
      await h1.exec('iptables', '-I', 'INPUT', '-p', 'udp', '--dport', '8472', '-j', 'DROP')
      await h2.exec('ip', 'link', 'set', 'flannel.1', 'mtu', '1300')
      rmSync(r3.subnetFile)
      try {
        const [d1, d2, d3] = await Promise.all([doctor(bed, r1), doctor(bed, r2), doctor(bed, r3)])
        assert.ok(codes(d1.report).includes('overlay-unreachable'), JSON.stringify(d1.report))
        assert.ok(d1.report.findings.some((f) => f.code === 'overlay-unreachable' && f.problem.includes(h2.underlayIp)), 'names the peer')
        assert.ok(codes(d2.report).includes('mtu-mismatch'), JSON.stringify(d2.report))
        assert.ok(d2.report.findings.some((f) => f.code === 'mtu-mismatch' && /1300/.test(f.problem) && /1450/.test(f.problem)), 'names both MTUs')
        assert.ok(codes(d3.report).includes('subnet-env-missing'), JSON.stringify(d3.report))
        for (const d of [d1, d2, d3]) assert.equal(d.code, 1)
      } finally {
        await h1.exec('iptables', '-D', 'INPUT', '-p', 'udp', '--dport', '8472', '-j', 'DROP')
        await h2.exec('ip', 'link', 'set', 'flannel.1', 'mtu', '1450')
        writeFileSync(r3.subnetFile, saved)
      }
    })

    await t.test('subnet.env that does not match the lease: subnet-env-stale', async () => {
      const saved = readFileSync(r3.subnetFile, 'utf8')
      writeFileSync(r3.subnetFile, saved.replace(/^FLANNEL_SUBNET=.*$/m, 'FLANNEL_SUBNET=10.5.250.1/24'))
      try {
        const d = await doctor(bed, r3)
        assert.deepEqual(codes(d.report), ['subnet-env-stale'])
        assert.match(d.report.findings[0]!.problem, /10\.5\.250\.1\/24/)
      } finally {
        writeFileSync(r3.subnetFile, saved)
      }
    })

    await t.test('ip_forward off, bridge-nf-call-iptables 0 with a bridge, legacy FORWARD DROP and FLANNEL rules in both backends', async () => {
      await h1.exec('sysctl', '-qw', 'net.ipv4.ip_forward=0')
      await h1.exec('ip', 'link', 'add', 'cni0', 'type', 'bridge')
      await h1.exec('sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0')
      await h1.exec('iptables-legacy', '-P', 'FORWARD', 'DROP')
      await h1.exec('iptables-legacy', '-t', 'nat', '-N', 'FLANNEL-POSTRTG')
      await h1.exec('iptables-legacy', '-t', 'nat', '-A', 'FLANNEL-POSTRTG', '-j', 'RETURN')
      try {
        const d = await doctor(bed, r1)
        assert.deepEqual(codes(d.report), ['br-netfilter-missing', 'forward-drop', 'ip-forward-off', 'iptables-backend-mismatch'], JSON.stringify(d.report))
        assert.ok(d.report.findings.some((f) => f.code === 'forward-drop' && f.problem.includes('iptables-legacy')))
      } finally {
        await h1.exec('sysctl', '-qw', 'net.ipv4.ip_forward=1')
        await h1.exec('sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1')
        await h1.exec('ip', 'link', 'del', 'cni0')
        await h1.exec('iptables-legacy', '-P', 'FORWARD', 'ACCEPT')
        await h1.exec('iptables-legacy', '-t', 'nat', '-F', 'FLANNEL-POSTRTG')
        await h1.exec('iptables-legacy', '-t', 'nat', '-X', 'FLANNEL-POSTRTG')
      }
    })

    await t.test('a second lease with h2\'s public IP and a short TTL: duplicate-public-ip, lease-expiring', async () => {
      const grant = await bed.etcdctl('lease', 'grant', '300')
      const id = /lease ([0-9a-f]+) granted/.exec(grant)?.[1]
      assert.ok(id, grant)
      const key = leaseKey('10.5.254.0/24')
      await bed.etcdctl('put', `--lease=${id}`, key, JSON.stringify({ PublicIP: h2.underlayIp, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:00:00:00:fe:01' } }))
      try {
        const d = await doctor(bed, r1)
        assert.ok(codes(d.report).includes('duplicate-public-ip'), JSON.stringify(d.report))
        assert.ok(codes(d.report).includes('lease-expiring'), JSON.stringify(d.report))
        assert.ok(d.report.findings.some((f) => f.code === 'duplicate-public-ip' && f.problem.includes('10.5.254.0/24') && f.problem.includes(h2.underlayIp)))
      } finally {
        await bed.etcdctl('del', key)
      }
    })

    await t.test('the chosen interface does not reach the peers: wrong-interface', async () => {
      await h3.exec('ip', 'link', 'add', 'dum0', 'type', 'veth', 'peer', 'name', 'dum1')
      await h3.exec('ip', 'addr', 'add', '192.168.77.3/24', 'dev', 'dum0')
      await h3.exec('ip', 'link', 'set', 'dum0', 'up')
      try {
        const d = await doctor(bed, r3, ['--iface=dum0'])
        assert.ok(codes(d.report).includes('wrong-interface'), JSON.stringify(d.report))
        assert.ok(d.report.findings.some((f) => f.code === 'wrong-interface' && f.problem.includes(`${h1.underlayIp} via eth0`)))
      } finally {
        await h3.exec('ip', 'link', 'del', 'dum0')
      }
    })

    await t.test('weftd stopped on h1, a peer\'s neighbour deleted and flannel.1 given another MAC: kernel-state-missing, vtep-mac-drift', async () => {
      await r1.proc.stop()
      const peerGw = (await bed.getLeases()).find((l) => l.attrs.PublicIP === h2.underlayIp)!.subnet.replace(/\/\d+$/, '')
      await h1.exec('ip', 'neigh', 'del', peerGw, 'dev', 'flannel.1')
      await h1.exec('ip', 'link', 'set', 'flannel.1', 'address', '02:11:22:33:44:55')
      const d = await doctor(bed, r1)
      assert.ok(codes(d.report).includes('kernel-state-missing'), JSON.stringify(d.report))
      assert.ok(d.report.findings.some((f) => f.code === 'kernel-state-missing' && f.problem.includes(`neighbour ${peerGw}`)))
      assert.ok(codes(d.report).includes('vtep-mac-drift'), JSON.stringify(d.report))
      assert.ok(d.report.findings.some((f) => f.code === 'vtep-mac-drift' && f.problem.includes('02:11:22:33:44:55')))
      await h1.exec('ip', 'link', 'del', 'flannel.1')
      const gone = await doctor(bed, r1)
      assert.ok(gone.report.findings.some((f) => f.code === 'kernel-state-missing' && /device/.test(f.problem)), JSON.stringify(gone.report))
      const restarted = await startWeftdReady(bed, h1)
      runs[0] = restarted
    })

    await t.test('cannot run (no store at that address): exit 2', async () => {
      const r = await h1.run([process.execPath, WEFT, 'doctor', '--etcd-endpoints=http://10.200.0.250:1', '--iface=eth0'], { allowFailure: true, timeoutMs: 60_000 })
      assert.equal(r.code, 2, r.stdout + r.stderr)
      assert.match(r.stderr, /cannot run/)
    })
  } finally {
    await bed.destroy()
  }
})
