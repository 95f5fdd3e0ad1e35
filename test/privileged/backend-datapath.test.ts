/**
 * Traffic through the programmed data plane: two throwaway namespaces ("hosts") joined by a
 * veth pair, each running a backend over LinuxKernel and told about the other's lease. Pings
 * between subnet addresses must pass (root only; nothing leaves the two namespaces).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Backend, BackendDeps, ExternalInterface } from '../../src/backend/backend.ts'
import { hostGw } from '../../src/backend/host-gw/host-gw.ts'
import { vxlan } from '../../src/backend/vxlan/vxlan.ts'
import type { Lease } from '../../src/lease/lease.ts'
import { LinuxKernel } from '../../src/kernel/linux/linux-kernel.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { FakeClock } from '../../src/util/clock.ts'
import { createScratchNetns, needsRoot, type ScratchNetns } from '../helpers/scratch-netns.ts'
import { config, FakeSubnetManager, ip, until } from '../unit/backend/backend-fixtures.ts'

const skip = needsRoot()

interface HostSpec { n: number }

async function twoHosts(type: 'vxlan' | 'host-gw', fn: (a: ScratchNetns, b: ScratchNetns) => Promise<void>): Promise<void> {
  const a = createScratchNetns('a')
  const b = createScratchNetns('b')
  const kernels: LinuxKernel[] = []
  const ac = new AbortController()
  const runs: Promise<void>[] = []
  try {
    a.exec('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b.name])
    const hosts: [ScratchNetns, HostSpec][] = [[a, { n: 2 }], [b, { n: 3 }]]
    for (const [ns, { n }] of hosts) {
      ns.exec('ip', ['link', 'set', 'lo', 'up'])
      ns.exec('ip', ['link', 'set', 'eth0', 'up'])
      ns.exec('ip', ['addr', 'add', `192.168.1.${n}/24`, 'dev', 'eth0'])
    }
    const leases: Lease[] = []
    const managers: FakeSubnetManager[] = []
    for (const [ns, { n }] of hosts) {
      const kernel = new LinuxKernel({ netns: ns.name })
      kernels.push(kernel)
      const eth0 = await kernel.getLink('eth0')
      assert.ok(eth0)
      const extIface: ExternalInterface = { name: 'eth0', index: eth0.index, mtu: eth0.mtu, ifaceAddr: ip(`192.168.1.${n}`), extAddr: ip(`192.168.1.${n}`) }
      const sm = new FakeSubnetManager({ subnet: `10.5.${n}.0/24` })
      const deps: BackendDeps = { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() }
      const backend: Backend = type === 'vxlan' ? vxlan({ vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 0 }, deps) : hostGw({}, deps)
      const network = await backend.registerNetwork(config({ type }), ac.signal)
      runs.push(network.run(ac.signal))
      leases.push(network.lease)
      managers.push(sm)
      // host-gw programs no address: give each host one address in its subnet, as a pod would have.
      if (type === 'host-gw') ns.exec('ip', ['addr', 'add', `10.5.${n}.1/32`, 'dev', 'lo'])
    }
    // Each host learns the other's lease, as from the store.
    managers[0]?.added(leases[1] as Lease)
    managers[1]?.added(leases[0] as Lease)
    await until(() => a.ipJson<unknown[]>(['route', 'show', '10.5.3.0/24']).length === 1 && b.ipJson<unknown[]>(['route', 'show', '10.5.2.0/24']).length === 1, 3000)
    await fn(a, b)
  } finally {
    ac.abort()
    await Promise.allSettled(runs)
    for (const k of kernels) k.close()
    a.destroy()
    b.destroy()
  }
}

const ping = (ns: ScratchNetns, src: string, dst: string): string => ns.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-I', src, dst])

test('vxlan (linux): two hosts reach each other\'s subnet through flannel.1', { skip }, async () => {
  await twoHosts('vxlan', async (a, b) => {
    assert.match(ping(a, '10.5.2.0', '10.5.3.0'), /2 received/)
    assert.match(ping(b, '10.5.3.0', '10.5.2.0'), /2 received/)
    // The packets really went through the VXLAN device.
    const stats = a.ipJson<{ stats64?: { tx?: { packets: number } } }[]>(['-s', 'link', 'show', 'flannel.1'])
    assert.ok((stats[0]?.stats64?.tx?.packets ?? 0) >= 2)
  })
})

test('host-gw (linux): two hosts reach each other\'s subnet via plain routes', { skip }, async () => {
  await twoHosts('host-gw', async (a, b) => {
    assert.match(ping(a, '10.5.2.1', '10.5.3.1'), /2 received/)
    assert.match(ping(b, '10.5.3.1', '10.5.2.1'), /2 received/)
  })
})
