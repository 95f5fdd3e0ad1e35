/**
 * Acceptance (issue 4): a lease of another backend type in etcd is not programmed; weftd logs a
 * warning naming it. A real peer of the same type beside it is the control.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed } from '../helpers/testbed.ts'
import { eventually, ipJson, leaseKey, startCluster } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

for (const [backend, other] of [['vxlan', 'host-gw'], ['host-gw', 'vxlan']] as const) {
  test(`${backend}: a hand-written ${other} lease is ignored with a warning`, { skip, timeout: 60_000 }, async () => {
    const bed = await createTestbed({ hosts: 2 })
    try {
      await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: backend } })
      const foreign = '10.5.250.0/24'
      const attrs = { PublicIP: '10.200.0.99', BackendType: other, ...(other === 'vxlan' ? { BackendData: { VNI: 1, VtepMAC: '02:00:00:00:02:50' } } : {}) }
      // Written before the daemons start (snapshot path) would hide the watch path: write it after.
      const runs = await startCluster(bed)
      await bed.etcdctl('put', leaseKey(foreign), JSON.stringify(attrs))
      const [h1, h2] = runs
      await eventually('the warning in h1\'s log', async () => /ignoring non-/.test(h1!.proc.output()) && /10\.5\.250\.0/.test(h1!.proc.output()), 5000)
      const line = h1!.proc.output().split('\n').find((l) => /ignoring non-/.test(l))!
      console.log(`# ${backend} log: ${line.trim()}`)
      assert.match(line, new RegExp(`ignoring non-${backend} subnet`))
      assert.match(line, /warn/i)
      // Control: the real peer is programmed, the foreign one is not (also after a restart: snapshot path).
      const peer = h2!.env.FLANNEL_SUBNET!.replace(/\.1\//, '.0/')
      const hasRoute = async (dst: string): Promise<boolean> => (await ipJson(h1!.host, ['route', 'show', 'exact', dst])).length > 0
      assert.ok(await hasRoute(peer), 'the real peer has a route')
      assert.equal(await hasRoute(foreign), false, 'no route for the foreign lease')
      await h2!.proc.stop()
      const again = await startCluster({ ...bed, hosts: [bed.hosts[1]!] })
      await eventually('h2 restarted warns too', async () => /ignoring non-/.test(again[0]!.proc.output()), 5000)
      assert.equal((await ipJson(h2!.host, ['route', 'show', 'exact', foreign])).length, 0, 'no route on a fresh start either')
      assert.ok(await hasRoute(peer))
    } finally {
      await bed.destroy()
    }
  })
}
