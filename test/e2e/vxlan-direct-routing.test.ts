/**
 * Acceptance (issue 4): vxlan DirectRouting on two L2 segments joined by a router. h1 and h2
 * share segment 0, h3 is alone on segment 1: same-segment peers get a plain route via the peer's
 * underlay address (no neighbour, no FDB entry), peers behind the router get VXLAN.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { addPodPerHost, ipJson, pingAllPairs, startCluster, type ReadyWeftd } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

interface Route { dst: string; gateway?: string; dev?: string; flags?: string[] }

const subnetOf = (r: ReadyWeftd): string => r.env.FLANNEL_SUBNET!.replace(/\.1\//, '.0/')

test('vxlan DirectRouting: direct routes within a segment, VXLAN across the router, full ping mesh', { skip, timeout: 90_000 }, async () => {
  const bed = await createTestbed({ hosts: 3, segments: 2 })
  try {
    assert.deepEqual(bed.hosts.map((h) => h.segment), [0, 0, 1])
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan', DirectRouting: true } })
    const runs = await startCluster(bed)
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [], 'every pod reaches every other pod, both ways')

    const leases = await bed.getLeases()
    const macOf = (h: TestHost): string => {
      const l = leases.find((x) => x.attrs.PublicIP === h.underlayIp)
      return (l?.attrs.BackendData as { VtepMAC: string }).VtepMAC
    }
    for (const me of runs) {
      const routes = await ipJson<Route>(me.host, ['route', 'show'])
      const neighs = await ipJson<{ dst: string; lladdr?: string }>(me.host, ['neigh', 'show', 'dev', 'flannel.1'])
      const fdb = await ipJson<{ mac: string; dst?: string }>(me.host, ['fdb', 'show', 'dev', 'flannel.1'], 'bridge')
      for (const peer of runs.filter((r) => r !== me)) {
        const subnet = subnetOf(peer)
        const route = routes.find((r) => r.dst === subnet)
        const what = `${me.host.name} → ${peer.host.name} (${subnet})`
        const mac = macOf(peer.host)
        if (peer.host.segment === me.host.segment) {
          assert.equal(route?.gateway, peer.host.underlayIp, `${what}: direct route via the peer's underlay IP`)
          assert.equal(route?.dev, 'eth0', what)
          assert.ok(!route?.flags?.includes('onlink'), `${what}: a plain route, not onlink`)
          assert.equal(neighs.find((n) => n.lladdr === mac), undefined, `${what}: no neighbour entry`)
          assert.equal(fdb.find((f) => f.mac === mac), undefined, `${what}: no FDB entry`)
        } else {
          assert.equal(route?.dev, 'flannel.1', `${what}: VXLAN route`)
          assert.equal(route?.gateway, subnet.replace(/\/\d+$/, ''), what)
          assert.ok(route?.flags?.includes('onlink'), `${what}: onlink`)
          assert.ok(neighs.some((n) => n.lladdr === mac), `${what}: neighbour → VtepMAC`)
          assert.equal(fdb.find((f) => f.mac === mac)?.dst, peer.host.underlayIp, `${what}: FDB → underlay IP`)
        }
      }
    }
  } finally {
    await bed.destroy()
  }
})

test('vxlan DirectRouting dual stack: IPv6 peers on the segment routed directly, across the router via flannel-v6.1', { skip, timeout: 90_000 }, async () => {
  const bed = await createTestbed({ hosts: 3, segments: 2, ipv6: true })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:5::/48', Backend: { Type: 'vxlan', DirectRouting: true } })
    const runs = await startCluster(bed)
    const pods = await addPodPerHost(runs, { ipv6: true })
    assert.deepEqual(await pingAllPairs(pods, 6), [], 'IPv6 mesh across segments')
    for (const me of runs) {
      const routes = await ipJson<Route>(me.host, ['-6', 'route', 'show'])
      for (const peer of runs.filter((r) => r !== me)) {
        const subnet = peer.env.FLANNEL_IPV6_SUBNET!.replace(/::1\//, '::/')
        const route = routes.find((r) => r.dst === subnet)
        const what = `${me.host.name} → ${peer.host.name} (${subnet})`
        if (peer.host.segment === me.host.segment) {
          assert.equal(route?.gateway, peer.host.underlayIpv6, `${what}: direct via the peer's IPv6 underlay address`)
          assert.equal(route?.dev, 'eth0', what)
        } else {
          assert.equal(route?.dev, 'flannel-v6.1', `${what}: VXLAN`)
        }
      }
    }
  } finally {
    await bed.destroy()
  }
})
