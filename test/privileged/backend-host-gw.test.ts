/** host-gw against LinuxKernel, one throwaway namespace per test (root only). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hostGw } from '../../src/backend/host-gw/host-gw.ts'
import type { ExternalInterface, Network } from '../../src/backend/backend.ts'
import { LinuxKernel } from '../../src/kernel/linux/linux-kernel.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { FakeClock } from '../../src/util/clock.ts'
import { createScratchNetns, needsRoot, type ScratchNetns } from '../helpers/scratch-netns.ts'
import { config, FakeSubnetManager, ip, lease, until } from '../unit/backend/backend-fixtures.ts'

const skip = needsRoot()

interface Env {
  ns: ScratchNetns
  kernel: LinuxKernel
  sm: FakeSubnetManager
  logger: MemoryLogger
  clock: FakeClock
  network: Network
  ac: AbortController
  running: Promise<void>
  routes(dst: string): { dst: string; gateway?: string; dev?: string }[]
}

/** A namespace with `eth0` (one end of a veth pair, both ends inside) at 192.168.1.2/24 and fd00:1::2/64. */
async function withHost(fn: (env: Env) => Promise<void>): Promise<void> {
  const ns = createScratchNetns('h')
  let kernel: LinuxKernel | undefined
  const ac = new AbortController()
  try {
    ns.exec('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p'])
    ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.eth0.accept_dad=0'])
    ns.exec('ip', ['link', 'set', 'eth0p', 'up'])
    ns.exec('ip', ['link', 'set', 'eth0', 'up'])
    ns.exec('ip', ['addr', 'add', '192.168.1.2/24', 'dev', 'eth0'])
    ns.exec('ip', ['addr', 'add', 'fd00:1::2/64', 'dev', 'eth0', 'nodad'])
    kernel = new LinuxKernel({ netns: ns.name })
    const eth0 = await kernel.getLink('eth0')
    assert.ok(eth0)
    const extIface: ExternalInterface = { name: 'eth0', index: eth0.index, mtu: eth0.mtu, ifaceAddr: ip('192.168.1.2'), extAddr: ip('192.168.1.2'), ifaceV6Addr: ip('fd00:1::2'), extV6Addr: ip('fd00:1::2') }
    const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24', ipv6Subnet: 'fd10:0:0:1::/64' })
    const logger = new MemoryLogger()
    const clock = new FakeClock()
    const backend = hostGw({}, { subnetManager: sm, extIface, kernel, logger, clock })
    const network = await backend.registerNetwork(config({ v4: '10.5.0.0/16', v6: 'fd10::/48', type: 'host-gw' }), ac.signal)
    const running = network.run(ac.signal)
    const routes = (dst: string) => ns.ipJson<{ dst: string; gateway?: string; dev?: string }[]>([dst.includes(':') ? '-6' : '-4', 'route', 'show', dst])
    try {
      await fn({ ns, kernel, sm, logger, clock, network, ac, running, routes })
    } finally {
      ac.abort()
      await running
    }
  } finally {
    kernel?.close()
    ns.destroy()
  }
}

const peer = (n: number) => lease({ type: 'host-gw', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n}`, ipv6Subnet: `fd10:0:0:${n}::/64`, publicIPv6: `fd00:1::${n}` })

test('host-gw (linux): programs a route per family per peer and removes exactly them', { skip }, async () => {
  await withHost(async ({ sm, routes, logger }) => {
    sm.added(peer(3))
    await until(() => routes('10.5.3.0/24').length === 1 && routes('fd10:0:0:3::/64').length === 1)
    // Our own notifications must not look like someone else's change (no re-assert loop).
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(logger.find('re-asserting peer state changed by someone else').length, 0)
    assert.deepEqual(routes('10.5.3.0/24').map((r) => [r.gateway, r.dev]), [['192.168.1.3', 'eth0']])
    assert.deepEqual(routes('fd10:0:0:3::/64').map((r) => [r.gateway, r.dev]), [['fd00:1::3', 'eth0']])
    sm.removed(peer(3))
    await until(() => routes('10.5.3.0/24').length === 0 && routes('fd10:0:0:3::/64').length === 0)
  })
})

test('host-gw (linux): a route deleted with `ip route del` is back within 1 s', { skip }, async () => {
  await withHost(async ({ ns, sm, routes }) => {
    sm.added(peer(3))
    await until(() => routes('10.5.3.0/24').length === 1)
    const t0 = Date.now()
    ns.exec('ip', ['route', 'del', '10.5.3.0/24'])
    await until(() => routes('10.5.3.0/24').length === 1, 1000)
    assert.ok(Date.now() - t0 < 1000)
  })
})

test('host-gw (linux): a peer that is not on-link is refused with the L2 message, once', { skip }, async () => {
  await withHost(async ({ sm, logger, routes }) => {
    const far = lease({ type: 'host-gw', subnet: '10.5.4.0/24', publicIP: '172.16.0.9' })
    sm.added(far)
    sm.added(far)
    await until(() => logger.find('refusing lease').length === 1)
    sm.added(peer(3))
    await until(() => routes('10.5.3.0/24').length === 1)
    assert.equal(logger.find('refusing lease').length, 1)
    assert.match(String(logger.find('refusing lease')[0]?.fields.reason), /172\.16\.0\.9 is not on-link on eth0 .*one L2 network/)
    assert.equal(routes('10.5.4.0/24').length, 0)
  })
})

test('host-gw (linux): 1,000 routes flushed at once are all back within 1 s', { skip }, async () => {
  await withHost(async ({ ns, sm }) => {
    ns.exec('ip', ['addr', 'add', '192.168.0.2/16', 'dev', 'eth0'])
    const peers = []
    for (let i = 0; i < 1000; i++) {
      const n = i + 10
      peers.push(lease({ type: 'host-gw', subnet: `10.5.${Math.floor(n / 4)}.${(n % 4) * 64}/26`, publicIP: `192.168.${10 + Math.floor(n / 250)}.${(n % 250) + 1}` }))
    }
    const count = (): number => ns.exec('ip', ['-4', 'route', 'show', 'root', '10.5.0.0/16']).split('\n').filter((l) => l.includes(' via ')).length
    sm.snapshot(...peers)
    await until(() => count() === 1000, 5000)
    const t0 = Date.now()
    ns.exec('ip', ['-4', 'route', 'flush', 'root', '10.5.0.0/16'])
    assert.ok(count() < 1000)
    await until(() => count() === 1000, 1000)
    assert.ok(Date.now() - t0 < 1000)
  })
})
