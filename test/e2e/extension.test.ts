/**
 * extension backend end to end: three hosts whose data plane is nothing but the operator's
 * commands (host-gw done by hand: `ip route replace $SUBNET via $PUBLIC_IP dev eth0`), with
 * PreStartupCommand's output published as BackendData and handed to peers on stdin, the
 * PostStartupCommand variables, pod pings across hosts, and SubnetRemoveCommand undoing a route
 * when a lease is deleted from etcd.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { addPodPerHost, eventually, ipJson, leaseKey, pingAllPairs, startCluster } from '../helpers/weftd.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false

// Each script records what it was given in <dir>/<this host's underlay IP>.log, one line per call.
const ME = `me=$(ip -o -4 addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)`
const ADD = `${ME}\nip route replace "$SUBNET" via "$PUBLIC_IP" dev eth0 || exit 1\necho "add $SUBNET $PUBLIC_IP $(cat)" >> "$1/$me.log"\n`
const REMOVE = `${ME}\nip route del "$SUBNET" via "$PUBLIC_IP" dev eth0 || exit 1\necho "remove $SUBNET $PUBLIC_IP $(cat)" >> "$1/$me.log"\n`
const POST = `${ME}\necho "post NETWORK=$NETWORK SUBNET=$SUBNET IPV6SUBNET=$IPV6SUBNET PUBLIC_IP=$PUBLIC_IP PUBLIC_IPV6=$PUBLIC_IPV6" >> "$1/$me.log"\n`

test('extension: commands program routes, BackendData from PreStartupCommand, pods ping, removal undone', { skip, timeout: 90_000 }, async () => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    const dir = bed.workDir
    for (const [name, body] of [['add.sh', ADD], ['remove.sh', REMOVE], ['post.sh', POST]] as const) writeFileSync(join(dir, name), body)
    await bed.putNetworkConfig({
      Network: '10.5.0.0/16',
      Backend: {
        Type: 'extension',
        // exec'd directly: `ip` prints this host's eth0 line, which becomes BackendData.
        PreStartupCommand: 'ip -o -4 addr show dev eth0',
        PostStartupCommand: `/bin/sh ${join(dir, 'post.sh')} ${dir}`,
        SubnetAddCommand: `/bin/sh ${join(dir, 'add.sh')} ${dir}`,
        SubnetRemoveCommand: `/bin/sh ${join(dir, 'remove.sh')} ${dir}`,
      },
    })
    const runs = await startCluster(bed)
    const hosts = bed.hosts as [TestHost, TestHost, TestHost]
    const logOf = (h: TestHost): string[] => {
      try {
        return readFileSync(join(dir, `${h.underlayIp}.log`), 'utf8').split('\n').filter(Boolean)
      } catch {
        return []
      }
    }

    // Leases as flannel's extension backend writes them: BackendData is the JSON string of the output.
    const leases = await bed.getLeases()
    assert.equal(leases.length, 3)
    for (const h of hosts) {
      const l = leases.find((x) => x.attrs.PublicIP === h.underlayIp)
      assert.equal(l?.attrs.BackendType, 'extension')
      assert.equal(typeof l?.attrs.BackendData, 'string')
      assert.match(l?.attrs.BackendData as string, new RegExp(`^\\d+: eth0 +inet ${h.underlayIp.replace(/\./g, '\\.')}/24 `))
    }
    // FLANNEL_MTU is the interface MTU: the commands choose any encapsulation.
    assert.equal(runs[0]!.env.FLANNEL_MTU, '1500')

    const pods = await addPodPerHost(runs)
    assert.deepEqual(await pingAllPairs(pods), [], 'pods reach each other over the routes the commands made')

    const [h1, h2, h3] = hosts
    const subnetOf = (i: number): string => runs[i]!.env.FLANNEL_SUBNET!.replace(/\.1\//, '.0/')
    const l3 = leases.find((x) => x.attrs.PublicIP === h3.underlayIp)!
    await eventually('every add recorded', async () => hosts.every((h) => logOf(h).filter((l) => l.startsWith('add ')).length === 2), 10_000)
    const h1Log = logOf(h1)
    assert.equal(h1Log[0], `post NETWORK=10.5.0.0/16 SUBNET=${subnetOf(0)} IPV6SUBNET= PUBLIC_IP=${h1.underlayIp} PUBLIC_IPV6=`)
    assert.ok(h1Log.includes(`add ${l3.subnet} ${h3.underlayIp} ${l3.attrs.BackendData as string}`), `h1 got h3's BackendData on stdin: ${h1Log.join(' | ')}`)
    const [route] = await ipJson<{ gateway?: string; dev?: string }>(h1, ['route', 'show', 'exact', l3.subnet])
    assert.deepEqual([route?.gateway, route?.dev], [h3.underlayIp, 'eth0'])

    // h3 leaves for good: its lease is deleted; the others run SubnetRemoveCommand.
    await runs[2]!.proc.stop()
    await bed.etcdctl('del', leaseKey(l3.subnet))
    for (const h of [h1, h2]) {
      await eventually(`${h.name} removed h3's route`, async () => (await ipJson(h, ['route', 'show', 'exact', l3.subnet])).length === 0, 10_000)
      // remove.sh deletes the route before it writes its line: wait for the line too.
      await eventually(`${h.name} logged h3's removal with its BackendData`, async () => logOf(h).includes(`remove ${l3.subnet} ${h3.underlayIp} ${l3.attrs.BackendData as string}`), 5_000)
    }
    assert.deepEqual(await pingAllPairs(pods.slice(0, 2)), [], 'h1 and h2 still reach each other')
    assert.equal(subnetOf(1), leases.find((x) => x.attrs.PublicIP === h2.underlayIp)?.subnet)
  } finally {
    await bed.destroy()
  }
})
