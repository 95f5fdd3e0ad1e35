/**
 * ipip backend end to end. Where the kernel has ipip (CONFIG_NET_IPIP): three hosts, flannel.ipip
 * as flannel makes it, pods ping. Where it has not (the machines weft is developed on): weftd
 * refuses to start with a message that says so, and the mesh test is skipped with that reason.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { kernelHasIpip } from '../helpers/kernel-features.ts'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { addPodPerHost, eventually, ipJson, pingAllPairs, startCluster, startWeftd } from '../helpers/weftd.ts'

const root = process.getuid?.() === 0


const hasIpip = root && kernelHasIpip()
const CONFIG = { Network: '10.5.0.0/16', Backend: { Type: 'ipip' } }

test('ipip: flannel.ipip on three hosts, pods ping', {
  skip: !root ? 'needs root (network namespaces)' : !hasIpip ? 'this kernel has no ipip support (CONFIG_NET_IPIP is not set: `ip link add type ipip` answers "Unknown device type"); covered by the MemoryKernel and netlink codec tests' : false,
  timeout: 90_000,
}, async () => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    await bed.putNetworkConfig(CONFIG)
    const runs = await startCluster(bed)
    const h1 = bed.hosts[0] as TestHost
    const [dev] = await ipJson<{ mtu: number; link_type: string; linkinfo?: { info_kind: string; info_data?: { local?: string; remote?: string } } }>(h1, ['-d', 'link', 'show', 'flannel.ipip'])
    assert.deepEqual([dev?.mtu, dev?.linkinfo?.info_kind, dev?.linkinfo?.info_data?.local], [1480, 'ipip', h1.underlayIp])
    assert.equal(runs[0]!.env.FLANNEL_MTU, '1480')
    for (const l of await bed.getLeases()) assert.deepEqual([l.attrs.BackendType, l.attrs.BackendData], ['ipip', undefined])
    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [])
  } finally {
    await bed.destroy()
  }
})

test('ipip: without kernel support weftd refuses to start and says why', {
  skip: !root ? 'needs root (network namespaces)' : hasIpip ? 'this kernel has ipip: the refusal cannot happen here' : false,
  timeout: 60_000,
}, async () => {
  const bed = await createTestbed({ hosts: 1 })
  try {
    await bed.putNetworkConfig(CONFIG)
    const run = startWeftd(bed, bed.hosts[0] as TestHost)
    await eventually('weftd exits', async () => !run.proc.isRunning(), 20_000)
    assert.match(run.proc.output(), /ipip: this kernel has no ipip support \(CONFIG_NET_IPIP; try `modprobe ipip`\)/)
    assert.equal((await bed.hosts[0]!.run(['ip', 'link', 'show', 'flannel.ipip'], { allowFailure: true })).code === 0, false, 'no half-made device')
  } finally {
    await bed.destroy()
  }
})
