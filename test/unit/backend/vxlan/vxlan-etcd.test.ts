/**
 * vxlan wired to the real pieces around it, with no root and no etcd: the config parser and
 * registry, EtcdSubnetManager over a shared MemoryRegistry (the "store"), one MemoryKernel per
 * host. Checks the lease format peers see and the MAC reuse through the store.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { backendRegistry } from '../../../../src/backend/registry.ts'
import type { Network } from '../../../../src/backend/backend.ts'
import { parseNetworkConfig } from '../../../../src/config/parse-network-config.ts'
import { formatCidr, formatIp } from '../../../../src/ip/ip.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { EtcdSubnetManager } from '../../../../src/subnet/etcd/etcd-subnet-manager.ts'
import { MemoryRegistry } from '../../../../src/subnet/etcd/memory-registry.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { host, until } from '../backend-fixtures.ts'

const P = '/coreos.com/network'
const CONFIG = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":4}}'

async function node(registry: MemoryRegistry, clock: FakeClock, n: number, existing?: Awaited<ReturnType<typeof host>>) {
  const h = existing ?? (await host({ v4: `192.168.1.${n}/24` }))
  const logger = new MemoryLogger()
  const sm = new EtcdSubnetManager({ registry, prefix: P, logger, clock, parseConfig: (json) => parseNetworkConfig(json, backendRegistry).config, random: () => n / 10 })
  const config = await sm.getNetworkConfig(new AbortController().signal)
  const definition = backendRegistry[config.backend.type]!
  const factory = await definition.load()
  const backend = factory(config.backend.options, { subnetManager: sm, extIface: h.extIface, kernel: h.kernel, logger, clock })
  const ac = new AbortController()
  const network: Network = await backend.registerNetwork(config, ac.signal)
  const running = network.run(ac.signal)
  return { ...h, network, logger, stop: async () => { ac.abort(); await running } }
}

test('vxlan over EtcdSubnetManager: two hosts program each other from the store', async () => {
  const clock = new FakeClock()
  const registry = new MemoryRegistry({ clock })
  registry.rawPut(`${P}/config`, CONFIG)
  const a = await node(registry, clock, 2)
  const b = await node(registry, clock, 3)
  try {
    const macA = (await a.kernel.getLink('flannel.4'))!.mac
    const stored = await registry.getSubnet(P, formatCidr(a.network.lease.subnet!).replace('/', '-'), new AbortController().signal)
    assert.equal(stored?.value, `{"PublicIP":"192.168.1.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":4,"VtepMAC":"${macA}"}}`)
    const subnetB = b.network.lease.subnet!
    await until(() => a.kernel.snapshot().routes.some((r) => formatCidr(r.dst) === formatCidr(subnetB)))
    const fdb = a.kernel.snapshot().fdb.map((f) => `${f.mac} ${formatIp(f.dst!)}`)
    assert.deepEqual(fdb, [`${(await b.kernel.getLink('flannel.4'))!.mac} 192.168.1.3`])
    const subnetA = a.network.lease.subnet!
    await until(() => b.kernel.snapshot().routes.some((r) => formatCidr(r.dst) === formatCidr(subnetA)))
  } finally {
    await a.stop()
    await b.stop()
  }
})

test('vxlan over EtcdSubnetManager: after a reboot (device gone) the MAC of the stored lease is reused', async () => {
  const clock = new FakeClock()
  const registry = new MemoryRegistry({ clock })
  registry.rawPut(`${P}/config`, CONFIG)
  const a = await node(registry, clock, 2)
  const mac = (await a.kernel.getLink('flannel.4'))!.mac
  const subnet = formatCidr(a.network.lease.subnet!)
  await a.stop()
  // Reboot: the device is gone, the lease is still in the store.
  await a.kernel.deleteLink((await a.kernel.getLink('flannel.4'))!.index)
  const again = await node(registry, clock, 2, a)
  try {
    assert.equal(formatCidr(again.network.lease.subnet!), subnet, 'same lease (same public IP)')
    assert.equal((await a.kernel.getLink('flannel.4'))!.mac, mac)
    assert.deepEqual(again.network.lease.attrs.backendData, { VNI: 4, VtepMAC: mac })
  } finally {
    await again.stop()
  }
})
