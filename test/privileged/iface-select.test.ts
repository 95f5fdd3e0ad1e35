/**
 * Interface selection against LinuxKernel in a throwaway namespace (root only): the routes and
 * addresses the real kernel reports (metrics, IPv6 link-local, route-get source) lead to the same
 * choices as the unit tests. Two veth pairs stand in for NICs; nothing leaves the namespace.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LinuxKernel } from '../../src/kernel/linux/linux-kernel.ts'
import { selectExternalInterface, type IfaceRequest } from '../../src/daemon/iface-select.ts'
import { formatIp, parseIp } from '../../src/ip/ip.ts'
import { createScratchNetns, needsRoot } from '../helpers/scratch-netns.ts'

const req = (r: Partial<IfaceRequest> = {}): IfaceRequest => ({ iface: [], ifaceRegex: [], families: [4], ...r })

test('LinuxKernel: default route, --iface, --iface-regex and --iface-can-reach', { skip: needsRoot() }, async () => {
  const ns = createScratchNetns('i')
  const kernel = new LinuxKernel({ netns: ns.name })
  try {
    const ip = (...args: string[]) => ns.exec('ip', args)
    // veth pairs with both ends inside the namespace (the dummy module may be absent).
    for (const [name, mtu] of [['eth0', '1450'], ['eth1', '9000']] as const) {
      ip('link', 'add', name, 'mtu', mtu, 'type', 'veth', 'peer', 'name', `${name}p`, 'mtu', mtu)
      ip('link', 'set', `${name}p`, 'up')
      ip('link', 'set', name, 'up')
    }
    ip('addr', 'add', '192.0.2.10/24', 'dev', 'eth0')
    ip('-6', 'addr', 'add', '2001:db8::10/64', 'dev', 'eth0', 'nodad')
    ip('addr', 'add', '10.1.0.5/16', 'dev', 'eth1')
    ip('-6', 'addr', 'add', 'fd00:1::5/64', 'dev', 'eth1', 'nodad')
    ip('route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'eth0', 'metric', '100')
    ip('route', 'add', 'default', 'via', '10.1.0.1', 'dev', 'eth1', 'metric', '200')
    ip('-6', 'route', 'add', 'default', 'via', '2001:db8::1', 'dev', 'eth0')

    const def = await selectExternalInterface(kernel, req({ families: [4, 6] }))
    assert.deepEqual([def.iface.name, def.iface.mtu, formatIp(def.iface.ifaceAddr!), formatIp(def.iface.ifaceV6Addr!)], ['eth0', 1450, '192.0.2.10', '2001:db8::10'])

    const named = await selectExternalInterface(kernel, req({ iface: ['missing', 'eth1'], families: [4, 6] }))
    assert.deepEqual([named.iface.name, named.iface.mtu, formatIp(named.iface.ifaceAddr!), formatIp(named.iface.ifaceV6Addr!)], ['eth1', 9000, '10.1.0.5', 'fd00:1::5'])
    assert.equal(named.skipped.length, 1)

    const re = await selectExternalInterface(kernel, req({ ifaceRegex: ['^10\\.1\\.'] }))
    assert.equal(re.iface.name, 'eth1')

    const reach = await selectExternalInterface(kernel, req({ ifaceCanReach: parseIp('10.1.200.1')! }))
    assert.deepEqual([reach.iface.name, formatIp(reach.iface.ifaceAddr!)], ['eth1', '10.1.0.5'])

    const pub = await selectExternalInterface(kernel, req({ publicIp: parseIp('10.1.0.5')! }))
    assert.equal(pub.iface.name, 'eth1')

    ip('route', 'del', 'default', 'via', '192.0.2.1', 'dev', 'eth0')
    assert.equal((await selectExternalInterface(kernel, req())).iface.name, 'eth1', 'the remaining default route')
    ip('route', 'del', 'default', 'via', '10.1.0.1', 'dev', 'eth1')
    await assert.rejects(selectExternalInterface(kernel, req()), /unable to find default route/)
  } finally {
    kernel.close()
    ns.destroy()
  }
})
