/**
 * Randomised sequences of lease batches, snapshots, foreign deletions (entries, the device) and
 * injected kernel faults
 * (fixed seeds): after the periodic check the kernel must hold exactly the entries of the final
 * lease set — nothing missing, nothing left behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { vxlan } from '../../../../src/backend/vxlan/vxlan.ts'
import { formatCidr, formatIp } from '../../../../src/ip/ip.ts'
import type { Lease, LeaseEvent } from '../../../../src/lease/lease.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import type { MemoryKernel } from '../../../../src/kernel/memory/memory-kernel.ts'
import { config, FakeSubnetManager, host, lease, settle } from '../backend-fixtures.ts'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const hex = (n: number): string => n.toString(16).padStart(2, '0')

function randomLease(r: () => number, n: number): Lease {
  const m = Math.floor(r() * 3)
  return lease({ type: 'vxlan', subnet: `10.5.${n}.0/24`, publicIP: `192.168.1.${n + Math.floor(r() * 2) * 100}`, data: { VNI: 1, VtepMAC: `0e:00:00:00:${hex(m)}:${hex(n)}` } })
}

/** The peer state visible in the kernel, as comparable strings. */
async function peerState(kernel: MemoryKernel): Promise<string[]> {
  const dev = (await kernel.getLink('flannel.1'))!
  const snap = kernel.snapshot()
  return [
    ...snap.neighs.filter((x) => x.index === dev.index).map((x) => `neigh ${formatIp(x.ip)} ${x.mac}`),
    ...snap.fdb.filter((x) => x.index === dev.index).map((x) => `fdb ${x.mac} ${formatIp(x.dst!)}`),
    ...snap.routes.filter((x) => x.index === dev.index && x.gateway).map((x) => `route ${formatCidr(x.dst)} ${formatIp(x.gateway!)}`),
  ].sort()
}

function expected(leases: Iterable<Lease>): string[] {
  const out: string[] = []
  for (const l of leases) {
    const mac = (l.attrs.backendData as { VtepMAC: string }).VtepMAC
    const gw = formatIp({ family: 4, value: l.subnet!.addr })
    out.push(`neigh ${gw} ${mac}`, `fdb ${mac} ${formatIp(l.attrs.publicIP!)}`, `route ${formatCidr(l.subnet!)} ${gw}`)
  }
  return out.sort()
}

for (const seed of Array.from({ length: 20 }, (_, i) => i + 1)) {
  test(`vxlan random sequence (seed ${seed}) converges to exactly the final lease set`, async () => {
    const r = rng(seed)
    const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
    // Peers at 192.168.1.n and .1nn (n ≥ 3: .2 is this host).
    const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
    const clock = new FakeClock()
    const ac = new AbortController()
    const network = await vxlan({ vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 0 }, { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock }).registerNetwork(config({ type: 'vxlan' }), ac.signal)
    const running = network.run(ac.signal)
    const live = new Map<number, Lease>()
    for (let step = 0; step < 120; step++) {
      const roll = r()
      if (roll < 0.55) {
        const events: LeaseEvent[] = []
        for (let i = 0; i < 1 + Math.floor(r() * 4); i++) {
          const n = 3 + Math.floor(r() * 12)
          if (r() < 0.7) {
            const l = randomLease(r, n)
            live.set(n, l)
            events.push({ type: 'added', lease: l })
          } else if (live.has(n)) {
            events.push({ type: 'removed', lease: live.get(n)! })
            live.delete(n)
          }
        }
        sm.push({ kind: 'events', events })
      } else if (roll < 0.65) {
        for (const n of [...live.keys()]) if (r() < 0.3) live.delete(n)
        sm.snapshot(...live.values())
      } else if (roll < 0.8) {
        const op = (['replaceNeigh', 'replaceFdb', 'replaceRoute', 'deleteRoute', 'deleteFdb'] as const)[Math.floor(r() * 5)]!
        kernel.failNext(op, 'EBUSY')
      } else if (roll < 0.83) {
        // Someone deletes the device.
        const dev = await kernel.getLink('flannel.1')
        if (dev) await kernel.deleteLink(dev.index).catch(() => {})
      } else {
        // Someone deletes one of our routes.
        const routes = (await kernel.listRoutes({ family: 4 })).filter((x) => x.gateway && x.onlink)
        const victim = routes[Math.floor(r() * routes.length)]
        // (may consume an injected fault instead: then nothing was deleted)
        if (victim) await kernel.deleteRoute(victim).catch(() => {})
      }
      await settle(2)
    }
    await settle(5)
    // Leftover injected faults are consumed by the first checks; later ones repair what failed.
    for (let i = 0; i < 3; i++) {
      await clock.advance(10_000)
      await settle(5)
    }
    assert.deepEqual(await peerState(kernel), expected(live.values()))
    ac.abort()
    await running
  })
}
