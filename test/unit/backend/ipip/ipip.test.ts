/** ipip on a MemoryKernel: the device as flannel makes it, DirectRouting, and the refusals. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ipip } from '../../../../src/backend/ipip/ipip.ts'
import { parseIpipOptions } from '../../../../src/backend/ipip/ipip-options.ts'
import { decodeLink, ifinfomsg, ipipRequest } from '../../../../src/kernel/linux/rtnetlink-codec.ts'
import { encodeMessage, parseMessages } from '../../../../src/kernel/linux/netlink-codec.ts'
import { formatIp } from '../../../../src/ip/ip.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { config, FakeSubnetManager, host, ip, lease, until } from '../backend-fixtures.ts'

async function setup(opts: { directRouting?: boolean; noModule?: boolean } = {}) {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  if (opts.noModule) kernel.withoutIpip()
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  const backend = ipip(parseIpipOptions({ directrouting: opts.directRouting ?? false }), { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  return { kernel, extIface, sm, backend }
}

test('options: DirectRouting only', () => {
  assert.deepEqual(parseIpipOptions({}), { directRouting: false })
  assert.throws(() => parseIpipOptions({ vni: 1 }), /unknown key "vni"; expected one of Type, DirectRouting/)
  assert.throws(() => parseIpipOptions({ directrouting: 'yes' }), /Backend\.DirectRouting: must be a boolean/)
})

test('device: flannel.ipip, local = interface address, MTU − 20, /32 address, up; lease without BackendData', async () => {
  const t = await setup()
  const network = await t.backend.registerNetwork(config({ type: 'ipip' }), new AbortController().signal)
  const dev = await t.kernel.getLink('flannel.ipip')
  assert.deepEqual([dev?.kind, dev?.mtu, dev?.up, dev?.ipip?.local && formatIp(dev.ipip.local), dev?.ipip?.remote], ['ipip', 1480, true, '192.168.1.2', undefined])
  assert.deepEqual((await t.kernel.listAddrs(4, dev!.index)).map((a) => `${formatIp(a.ip)}/${a.prefix}`), ['10.5.1.0/32'])
  assert.equal(network.mtu, 1480)
  assert.deepEqual(t.sm.acquired[0], { publicIP: ip('192.168.1.2'), backendType: 'ipip' })
})

test('DirectRouting: an on-link peer is routed via the external interface, a distant one through the tunnel', async () => {
  const t = await setup({ directRouting: true })
  const network = await t.backend.registerNetwork(config({ type: 'ipip' }), new AbortController().signal)
  const ac = new AbortController()
  const done = network.run(ac.signal)
  try {
    await t.kernel.replaceRoute({ dst: { family: 4, addr: 0n, prefix: 0 }, gateway: ip('192.168.1.254'), index: t.extIface.index })
    t.sm.added(lease({ type: 'ipip', subnet: '10.5.3.0/24', publicIP: '192.168.1.3' }), lease({ type: 'ipip', subnet: '10.5.4.0/24', publicIP: '172.16.0.4' }))
    const dev = await t.kernel.getLink('flannel.ipip')
    await until(() => t.kernel.calls('replaceRoute').length >= 3)
    const [near] = await t.kernel.listRoutes({ family: 4, dst: { family: 4, addr: 0x0a050300n, prefix: 24 } })
    const [far] = await t.kernel.listRoutes({ family: 4, dst: { family: 4, addr: 0x0a050400n, prefix: 24 } })
    assert.deepEqual([near?.index, far?.index, far?.onlink], [t.extIface.index, dev!.index, true])
  } finally {
    ac.abort()
    await done
  }
})

test('a kernel without ipip: a clear refusal; IPv6 networks refused; a foreign flannel.ipip is not deleted', async () => {
  const t = await setup({ noModule: true })
  await assert.rejects(t.backend.registerNetwork(config({ type: 'ipip' }), new AbortController().signal), /this kernel has no ipip support \(CONFIG_NET_IPIP; try `modprobe ipip`\)/)
  const v6 = await setup()
  await assert.rejects(v6.backend.registerNetwork(config({ type: 'ipip', v4: '10.5.0.0/16', v6: 'fd00::/48' }), new AbortController().signal), /EnableIPv6: the ipip backend carries IPv4 only/)
  const foreign = await setup()
  await foreign.kernel.openTun({ name: 'flannel.ipip' })
  await assert.rejects(foreign.backend.registerNetwork(config({ type: 'ipip' }), new AbortController().signal), /flannel\.ipip isn't an ipip mode device, please remove device and try again/)
  assert.equal((await foreign.kernel.getLink('flannel.ipip'))?.kind, 'tun')
})

test('netlink: the ipip request round-trips through the link decoder (kind ipip, IFLA_IPTUN_LOCAL, MTU)', () => {
  const msg = encodeMessage(16, 0, 1, ifinfomsg(7), ipipRequest({ name: 'flannel.ipip', local: ip('10.200.0.1'), mtu: 1480 }))
  const [m] = parseMessages(msg)
  const link = decodeLink(m!.payload)
  assert.deepEqual([link?.name, link?.kind, link?.mtu, link?.ipip?.local && formatIp(link.ipip.local), link?.ipip?.remote], ['flannel.ipip', 'ipip', 1480, '10.200.0.1', undefined])
})
