/**
 * Randomised host-gw sequences (fixed seeds): lease batches and snapshots with peers that are
 * on-link, off-link (refused by the kernel) or claim our own address (refused by validation),
 * foreign route deletions and injected faults. After the periodic check the kernel must hold
 * exactly one route per valid, on-link lease.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hostGw } from '../../../../src/backend/host-gw/host-gw.ts'
import { formatCidr, formatIp } from '../../../../src/ip/ip.ts'
import type { Lease, LeaseEvent } from '../../../../src/lease/lease.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { config, FakeSubnetManager, host, lease, settle } from '../backend-fixtures.ts'

function rng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const OWN = '192.168.1.2'

function randomLease(r: () => number, n: number): Lease {
  const kind = r()
  const publicIP = kind < 0.7 ? `192.168.1.${n + 10}` : kind < 0.9 ? `172.16.0.${n}` : OWN
  return lease({ type: 'host-gw', subnet: `10.5.${n}.0/24`, publicIP })
}

for (const seed of Array.from({ length: 15 }, (_, i) => i + 1)) {
  test(`host-gw random sequence (seed ${seed}) converges to one route per valid on-link lease`, async () => {
    const r = rng(seed)
    const { kernel, extIface } = await host({ v4: `${OWN}/24` })
    const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
    const clock = new FakeClock()
    const ac = new AbortController()
    const network = await hostGw({}, { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock }).registerNetwork(config(), ac.signal)
    const running = network.run(ac.signal)
    const live = new Map<number, Lease>()
    for (let step = 0; step < 100; step++) {
      const roll = r()
      if (roll < 0.6) {
        const events: LeaseEvent[] = []
        for (let i = 0; i < 1 + Math.floor(r() * 4); i++) {
          const n = 2 + Math.floor(r() * 12)
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
      } else if (roll < 0.7) {
        for (const n of [...live.keys()]) if (r() < 0.3) live.delete(n)
        sm.snapshot(...live.values())
      } else if (roll < 0.85) {
        kernel.failNext((['replaceRoute', 'deleteRoute'] as const)[Math.floor(r() * 2)]!, 'EBUSY')
      } else {
        const routes = (await kernel.listRoutes({ family: 4 })).filter((x) => x.gateway)
        const victim = routes[Math.floor(r() * routes.length)]
        if (victim) await kernel.deleteRoute(victim).catch(() => {})
      }
      await settle(2)
    }
    for (let i = 0; i < 3; i++) {
      await clock.advance(10_000)
      await settle(5)
    }
    const actual = (await kernel.listRoutes({ family: 4 })).filter((x) => x.gateway).map((x) => `${formatCidr(x.dst)} via ${formatIp(x.gateway!)}`).sort()
    const wanted = [...live.values()]
      .filter((l) => formatIp(l.attrs.publicIP!).startsWith('192.168.1.') && formatIp(l.attrs.publicIP!) !== OWN)
      .map((l) => `${formatCidr(l.subnet!)} via ${formatIp(l.attrs.publicIP!)}`).sort()
    assert.deepEqual(actual, wanted)
    ac.abort()
    await running
  })
}
