/** The netns option: work lands in the named namespace and the thread always comes home. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readlinkSync } from 'node:fs'
import { LinuxKernel } from '../../src/kernel/linux/linux-kernel.ts'
import { Netns } from '../../src/kernel/linux/netns.ts'
import { createScratchNetns, needsRoot } from '../helpers/scratch-netns.ts'

const skip = needsRoot()
const here = (): string => readlinkSync('/proc/thread-self/ns/net')

test('Netns.run switches back after success and after a throw', { skip }, () => {
  const ns = createScratchNetns('n')
  const netns = new Netns(ns.name)
  try {
    const home = here()
    const inside = netns.run(() => here())
    assert.notEqual(inside, home)
    assert.equal(here(), home)
    assert.throws(() => netns.run(() => { throw new Error('boom') }), /boom/)
    assert.equal(here(), home)
  } finally {
    netns.close()
    ns.destroy()
  }
})

test('LinuxKernel with netns changes that namespace only, sysctls included', { skip }, async () => {
  const ns = createScratchNetns('n')
  const k = new LinuxKernel({ netns: ns.name })
  try {
    const home = here()
    await k.createVxlan({ name: 'wtnsprobe0', vni: 4001, port: 0, learning: false, gbp: false })
    assert.match(ns.exec('ip', ['link', 'show', 'wtnsprobe0']), /wtnsprobe0/)
    assert.equal((await k.listLinks()).some((l) => l.name === 'wtnsprobe0'), true)
    await k.setSysctl('net/ipv6/conf/wtnsprobe0/accept_ra', '0')
    assert.equal(await k.getSysctl('net/ipv6/conf/wtnsprobe0/accept_ra'), '0')
    // Not visible from the root namespace: the probe device and its sysctl live in the netns.
    assert.equal(await k.getSysctl('net/ipv6/conf/wtnsprobe0/forwarding'), '0')
    assert.equal(existsSync('/proc/sys/net/ipv6/conf/wtnsprobe0'), false)
    assert.equal(here(), home)
    await assert.rejects(k.setSysctl('net/ipv6/conf/nope0/accept_ra', '0'), { name: 'KernelError' })
    assert.equal(here(), home)
  } finally {
    k.close()
    ns.destroy()
  }
})

test('without the netns option LinuxKernel works in the namespace it runs in (as weftd under ip netns exec)', { skip }, () => {
  const ns = createScratchNetns('n')
  try {
    const url = new URL('../../src/kernel/linux/linux-kernel.ts', import.meta.url).href
    const script = `
      const { LinuxKernel } = await import(${JSON.stringify(url)})
      const k = new LinuxKernel()
      const l = await k.createVxlan({ name: 'wtcur0', vni: 4002, port: 0, learning: false, gbp: false })
      await k.setSysctl('net/ipv6/conf/wtcur0/accept_ra', '0')
      console.log(JSON.stringify({ index: l.index, links: (await k.listLinks()).map((x) => x.name), ra: await k.getSysctl('net/ipv6/conf/wtcur0/accept_ra') }))
      k.close()`
    const r = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(r.status, 0, r.stderr)
    const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { links: string[]; ra: string }
    assert.deepEqual(out.links.sort(), ['lo', 'wtcur0'])
    assert.equal(out.ra, '0')
    assert.match(ns.exec('ip', ['link', 'show', 'wtcur0']), /wtcur0/)
  } finally {
    ns.destroy()
  }
})
