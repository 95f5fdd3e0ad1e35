/**
 * Acceptance (issue 15): another writer puts a different PublicIP over a host's lease key (a
 * misconfigured host, a restored backup), or deletes it. Within 5 s the key holds this host's
 * PublicIP again and pods ping both ways (flanneld exits on a delete; weft was left broken on an
 * overwrite before this).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { addPodPerHost, leaseKey, measureUntil, pingAllPairs, startCluster } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

test('own lease overwritten with another PublicIP, then deleted: taken back within 5 s, pods ping both ways', { skip, timeout: 120_000 }, async () => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } })
    const runs = await startCluster(bed)
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [])
    const h1 = bed.hosts[0] as TestHost
    const own = (await bed.getLeases()).find((l) => l.attrs['PublicIP'] === h1.underlayIp)!
    const key = leaseKey(own.subnet)
    const ours = async (): Promise<boolean> => {
      const lease = (await bed.getLeases()).find((l) => l.subnet === own.subnet)
      return lease?.attrs['PublicIP'] === h1.underlayIp && lease.etcdLease !== '0'
    }
    // The hijacker claims h1's subnet for h3's PublicIP with another VTEP MAC (a bare put, no lease).
    const hijacked = JSON.stringify({ ...own.attrs, PublicIP: bed.hosts[2]!.underlayIp, BackendData: { VNI: 1, VtepMAC: '02:de:ad:be:ef:01' } })
    const figures: string[] = []
    for (const [what, args] of [['overwrite', ['put', key, hijacked]], ['delete', ['del', key]]] as const) {
      const t0 = Date.now()
      await bed.etcdctl(...args)
      const ms = await measureUntil(`${what}: key back to h1's PublicIP`, ours, 5000, t0, 20)
      assert.deepEqual(await pingAllPairs(pods, 4, 5000 - (Date.now() - t0)), [], `pods ping both ways within 5 s of the ${what}`)
      figures.push(`${what}: key back in ${ms} ms, pings in ${Date.now() - t0} ms`)
    }
    console.log(`# lease takeback: ${figures.join('; ')}`)
    const log = runs[0]!.proc.output()
    assert.match(log, /own lease key overwritten by another writer; writing ours back/)
    assert.ok(log.includes(h1.underlayIp) && log.includes(bed.hosts[2]!.underlayIp), 'both PublicIPs are in the log')
    assert.match(log, /own lease key deleted or no longer a lease; re-creating it/)
    for (const r of runs) assert.ok(r.proc.isRunning(), `weftd on ${r.host.name} still runs`)
  } finally {
    await bed.destroy()
  }
})
