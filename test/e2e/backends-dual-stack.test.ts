/**
 * Acceptance (issue 4): dual stack (EnableIPv6 + IPv6Network) on an IPv6 underlay, for host-gw and
 * vxlan (second device flannel-v6.1): every host leases both families, the IPv6 peer entries are
 * programmed, and pods ping each other over IPv4 and IPv6.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed } from '../helpers/testbed.ts'
import { addPodPerHost, ipJson, leaseKey, measureUntil, pingAllPairs, startCluster } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

interface Route { dst: string; gateway?: string; dev?: string; flags?: string[] }

for (const backend of ['host-gw', 'vxlan'] as const) {
  test(`${backend} dual stack: IPv6 leases, IPv6 peer routes, ping and ping -6 between all pods, a deleted lease unprogrammed in both families`, { skip, timeout: 90_000 }, async () => {
    const bed = await createTestbed({ hosts: 3, ipv6: true })
    try {
      await bed.putNetworkConfig({ Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:5::/48', Backend: { Type: backend } })
      const runs = await startCluster(bed)
      for (const r of runs) assert.match(r.env.FLANNEL_IPV6_SUBNET ?? '', /^fd00:10:5:[0-9a-f]+::1\/64$/, `${r.host.name} FLANNEL_IPV6_SUBNET`)
      const leases = await bed.getLeases()
      assert.equal(leases.length, 3)
      for (const l of leases) assert.match(l.ipv6Subnet ?? '', /^fd00:10:5:[0-9a-f]+::\/64$/, 'the lease key carries the IPv6 subnet')

      if (backend === 'vxlan') {
        for (const r of runs) {
          const [link] = await ipJson<{ linkinfo?: { info_data?: { id?: number; local6?: string } } }>(r.host, ['-d', 'link', 'show', 'flannel-v6.1'])
          assert.equal(link?.linkinfo?.info_data?.id, 1, `${r.host.name}: flannel-v6.1 with VNI 1`)
          assert.equal(link?.linkinfo?.info_data?.local6, r.host.underlayIpv6, `${r.host.name}: flannel-v6.1 local = IPv6 underlay`)
        }
      }
      for (const me of runs) {
        const routes = await ipJson<Route>(me.host, ['-6', 'route', 'show'])
        for (const peer of runs.filter((r) => r !== me)) {
          const subnet = peer.env.FLANNEL_IPV6_SUBNET!.replace(/::1\//, '::/')
          const route = routes.find((r) => r.dst === subnet)
          const what = `${me.host.name} → ${peer.host.name} ${subnet}`
          if (backend === 'host-gw') {
            assert.equal(route?.gateway, peer.host.underlayIpv6, `${what}: via the peer's IPv6 PublicIP`)
            assert.equal(route?.dev, 'eth0', what)
          } else {
            assert.equal(route?.dev, 'flannel-v6.1', what)
            assert.equal(route?.gateway, subnet.replace(/\/\d+$/, ''), what)
          }
        }
      }

      const pods = await addPodPerHost(runs, { ipv6: true })
      assert.deepEqual(await pingAllPairs(pods, 4), [], 'IPv4 mesh')
      assert.deepEqual(await pingAllPairs(pods, 6), [], 'IPv6 mesh (ping -6)')

      // FLANNEL_MTU leaves room for the encapsulation: full-size packets with DF set get through.
      const mtu = Number(runs[0]!.env.FLANNEL_MTU)
      assert.equal(mtu, backend === 'vxlan' ? 1500 - 70 : 1500, 'FLANNEL_MTU (vxlan over IPv6 costs 70 bytes)')
      if (backend === 'vxlan') {
        const mtuOf = async (dev: string) => (await ipJson<{ mtu: number }>(runs[0]!.host, ['link', 'show', dev]))[0]?.mtu
        assert.deepEqual([await mtuOf('flannel.1'), await mtuOf('flannel-v6.1')], [1450, 1430], 'device MTUs: 50 / 70 bytes of encapsulation')
      }
      const [a, b] = pods as [typeof pods[0], typeof pods[0]]
      const big4 = await a.run(['ping', '-n', '-c1', '-W2', '-M', 'do', '-s', String(mtu - 28), b.ip], { allowFailure: true })
      assert.equal(big4.code, 0, `IPv4 ${mtu}-byte packets with DF: ${big4.stdout}${big4.stderr}`)
      const big6 = await a.run(['ping', '-6', '-n', '-c1', '-W2', '-M', 'do', '-s', String(mtu - 48), b.ipv6!], { allowFailure: true })
      assert.equal(big6.code, 0, `IPv6 ${mtu}-byte packets: ${big6.stdout}${big6.stderr}`)

      // A dual-stack lease deleted while its weftd is down: both families' routes go within 1 s.
      const victim = runs[2]!
      await victim.proc.stop()
      const lease = leases.find((l) => l.attrs.PublicIP === victim.host.underlayIp)!
      const t0 = Date.now()
      await bed.etcdctl('del', leaseKey(lease.subnet, lease.ipv6Subnet))
      const ms = await Promise.all(runs.slice(0, 2).map((r) => measureUntil(`${r.host.name} to drop both routes`, async () =>
        (await ipJson(r.host, ['route', 'show', 'exact', lease.subnet])).length === 0
        && (await ipJson(r.host, ['-6', 'route', 'show', 'exact', lease.ipv6Subnet!])).length === 0, 5000, t0)))
      console.log(`# ${backend} dual stack: IPv4+IPv6 routes of a deleted lease gone after ${ms.join(' / ')} ms`)
      assert.ok(Math.max(...ms) <= 1000, `within 1 s, took ${ms.join('/')} ms`)
      assert.deepEqual(await pingAllPairs(pods.slice(0, 2), 6, 3000), [], 'the remaining pods still talk over IPv6')
    } finally {
      await bed.destroy()
    }
  })
}
