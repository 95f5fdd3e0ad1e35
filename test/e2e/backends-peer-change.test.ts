/**
 * A peer's lease changes in place (its VtepMAC after a device re-creation elsewhere, or its
 * PublicIP): the other hosts replace the neighbour/FDB/route entries within 1 s and leave
 * nothing of the old values behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed } from '../helpers/testbed.ts'
import { ipJson, leaseKey, measureUntil, startCluster } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

interface Fdb { mac: string; dst?: string }
interface Neigh { dst: string; lladdr?: string }

test('vxlan: a peer lease with a new VtepMAC and PublicIP is re-programmed within 1 s, old entries removed', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 2 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } })
    const runs = await startCluster(bed)
    const [h1, h2] = bed.hosts
    const lease = (await bed.getLeases()).find((l) => l.attrs.PublicIP === h2!.underlayIp)!
    const oldMac = (lease.attrs.BackendData as { VtepMAC: string }).VtepMAC
    const gw = lease.subnet.replace(/\/\d+$/, '')
    const state = async () => ({
      fdb: await ipJson<Fdb>(h1!, ['fdb', 'show', 'dev', 'flannel.1'], 'bridge'),
      neigh: (await ipJson<Neigh>(h1!, ['neigh', 'show', 'dev', 'flannel.1'])).filter((n) => n.dst === gw),
    })
    assert.deepEqual((await state()).fdb.filter((f) => f.dst).map((f) => `${f.mac} ${f.dst}`), [`${oldMac} ${h2!.underlayIp}`])

    // Stop h2's weftd first so it does not fight over its own lease.
    await runs[1]!.proc.stop()
    const newMac = '02:42:00:00:00:02'
    const newIp = '10.200.0.42'
    const t0 = Date.now()
    await bed.etcdctl('put', leaseKey(lease.subnet), JSON.stringify({ ...lease.attrs, PublicIP: newIp, BackendData: { VNI: 1, VtepMAC: newMac } }))
    const ms = await measureUntil('h1 re-programs the peer', async () => {
      const s = await state()
      const fdb = s.fdb.filter((f) => f.dst).map((f) => `${f.mac} ${f.dst}`)
      return fdb.length === 1 && fdb[0] === `${newMac} ${newIp}` && s.neigh.length === 1 && s.neigh[0]!.lladdr === newMac
    }, 5000, t0)
    console.log(`# vxlan peer re-programmed (new VtepMAC and PublicIP) after ${ms} ms`)
    assert.ok(ms <= 1000, `within 1 s, took ${ms} ms`)
    const [route] = await ipJson<{ dev?: string; gateway?: string }>(h1!, ['route', 'show', 'exact', lease.subnet])
    assert.equal(route?.dev, 'flannel.1')
    assert.equal(route?.gateway, gw)
  } finally {
    await bed.destroy()
  }
})

test('host-gw: a peer lease with a new PublicIP moves the route within 1 s', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'host-gw' } })
    const runs = await startCluster(bed)
    const [h1, h2, h3] = bed.hosts
    const lease = (await bed.getLeases()).find((l) => l.attrs.PublicIP === h2!.underlayIp)!
    await runs[1]!.proc.stop()
    const t0 = Date.now()
    await bed.etcdctl('put', leaseKey(lease.subnet), JSON.stringify({ ...lease.attrs, PublicIP: h3!.underlayIp }))
    const ms = await measureUntil('h1 moves the route', async () => {
      const routes = await ipJson<{ gateway?: string }>(h1!, ['route', 'show', 'exact', lease.subnet])
      return routes.length === 1 && routes[0]!.gateway === h3!.underlayIp
    }, 5000, t0)
    console.log(`# host-gw route moved to the new PublicIP after ${ms} ms`)
    assert.ok(ms <= 1000, `within 1 s, took ${ms} ms`)
  } finally {
    await bed.destroy()
  }
})
