/**
 * host-gw keeps its routes: a peer route deleted by hand, or replaced by one via another gateway,
 * is put back within 1 s and pod traffic resumes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { addPodPerHost, ipJson, measureUntil, pingAllPairs, startCluster } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

test('host-gw: a peer route deleted or replaced by hand is restored within 1 s', { skip, timeout: 60_000 }, async () => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'host-gw' } })
    const runs = await startCluster(bed)
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [])
    const [h1, h2, h3] = bed.hosts as [TestHost, TestHost, TestHost]
    const subnet = runs[1]!.env.FLANNEL_SUBNET!.replace(/\.1\//, '.0/')
    const correct = async (): Promise<boolean> => {
      const [r] = await ipJson<{ gateway?: string; dev?: string }>(h1, ['route', 'show', 'exact', subnet])
      return r?.gateway === h2.underlayIp && r.dev === 'eth0'
    }
    assert.ok(await correct(), 'h1 starts with the route to h2')

    const cases: Array<[string, string[]]> = [
      ['deleted', ['ip', 'route', 'del', subnet]],
      // A route that "works" at the IP level but goes through the wrong host.
      ['replaced', ['ip', 'route', 'replace', subnet, 'via', h3.underlayIp, 'dev', 'eth0']],
    ]
    const figures: string[] = []
    for (const [what, argv] of cases) {
      const t0 = Date.now()
      await h1.exec(...argv)
      const ms = await measureUntil(`route ${what} restored`, correct, 5000, t0)
      figures.push(`${what} ${ms} ms`)
      assert.ok(ms <= 1000, `route ${what}: restored within 1 s, took ${ms} ms`)
      assert.deepEqual(await pingAllPairs(pods, 4, 5000), [], `pings after the route was ${what}`)
    }
    console.log(`# host-gw route restore on h1: ${figures.join(', ')}`)
  } finally {
    await bed.destroy()
  }
})
