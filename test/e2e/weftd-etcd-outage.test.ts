/**
 * etcd stopped for 30 s under running weftd processes (issue: core): they keep running and
 * keep the data plane, resume their watch when etcd returns, and program a host that joined
 * after the outage.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestbed } from '../helpers/testbed.ts'
import { addPodPerHost, eventually, pingAllPairs, startWeftdReady } from '../helpers/weftd.ts'
import { nsExec } from '../helpers/netns.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

test('weftd survives a 30 s etcd outage and sees a host that joins after it', { skip, timeout: 150_000 }, async () => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'host-gw' } })
    const [h1, h2, h3] = bed.hosts as [typeof bed.hosts[0], typeof bed.hosts[0], typeof bed.hosts[0]]
    const runs = [await startWeftdReady(bed, h1), await startWeftdReady(bed, h2)]
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [])

    await bed.etcd!.stop()
    await new Promise((r) => setTimeout(r, 30_000))
    for (const r of runs) assert.ok(r.proc.isRunning(), `${r.host.name} weftd exited during the outage:\n${r.proc.output()}`)
    assert.deepEqual(await pingAllPairs(pods), [], 'the data plane stays up without etcd')

    await bed.etcd!.start()
    const third = await startWeftdReady(bed, h3, [], { timeoutMs: 30_000 })
    const subnet = third.env.FLANNEL_SUBNET!.replace(/\.1\//, '.0/')
    // The survivors' watches reconnect and program the newcomer's route.
    for (const r of runs) {
      await eventually(`${r.host.name} routes ${subnet}`, async () => (await nsExec(r.host.netns, ['ip', 'route', 'show', subnet])).stdout.includes(`via ${h3.underlayIp}`), 20_000)
      assert.ok(r.proc.isRunning())
    }
    const all = [...pods, ...(await addPodPerHost([third]))]
    assert.deepEqual(await pingAllPairs(all), [])
  } finally {
    await bed.destroy()
  }
})
