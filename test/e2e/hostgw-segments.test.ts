/**
 * host-gw needs one L2 network: on two segments joined by a router, same-segment peers get their
 * routes, a peer behind the router is refused with a reason in the log (no route, no crash).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed } from '../helpers/testbed.ts'
import { addPodPerHost, eventually, ipJson, pingAllPairs, startCluster } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

test('host-gw across a router: on-link peers routed, the off-link peer refused with a reason', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 3, segments: 2 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'host-gw' } })
    const runs = await startCluster(bed)
    const [r1, r2, r3] = runs
    const subnet = (r: typeof r1): string => r!.env.FLANNEL_SUBNET!.replace(/\.1\//, '.0/')
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods.slice(0, 2)), [], 'h1 and h2 share a segment')

    await eventually('h1 logs why h3 is refused', async () => /not on-link/.test(r1!.proc.output()), 5000)
    const line = r1!.proc.output().split('\n').find((l) => /not on-link/.test(l))!
    console.log(`# h1: ${line.trim()}`)
    assert.match(line, new RegExp(`peer public IP ${bed.hosts[2]!.underlayIp.replaceAll('.', '\\.')} is not on-link on eth0`))
    assert.equal((await ipJson(r1!.host, ['route', 'show', 'exact', subnet(r3)])).length, 0, 'no route to h3 on h1')
    assert.equal((await ipJson(r3!.host, ['route', 'show', 'exact', subnet(r1)])).length, 0, 'no route to h1 on h3')
    assert.ok(runs.every((r) => r.proc.isRunning()), 'a refused peer does not stop the daemons')
    assert.ok((await ipJson(r1!.host, ['route', 'show', 'exact', subnet(r2)])).length === 1)
  } finally {
    await bed.destroy()
  }
})
