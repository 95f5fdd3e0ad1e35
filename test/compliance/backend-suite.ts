/**
 * The backend compliance checks of design.md §8, run against every data-plane backend on a
 * MemoryKernel host (libp2p's interface-compliance-tests shape: one suite, a small harness per
 * implementation).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Backend, Network } from '../../src/backend/backend.ts'
import type { NetworkConfig } from '../../src/config/network-config.ts'
import type { Lease } from '../../src/lease/lease.ts'
import type { MemoryKernel } from '../../src/kernel/memory/memory-kernel.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { FakeClock } from '../../src/util/clock.ts'
import { FakeSubnetManager, host, lease, settle, until } from '../unit/backend/backend-fixtures.ts'
import type { BackendDeps } from '../../src/backend/backend.ts'

export interface BackendHarness {
  /** flannel type string the backend must tag its lease with. */
  readonly type: string
  readonly config: NetworkConfig
  create(deps: BackendDeps): Backend
  /** A valid remote lease for peer n (subnet 10.5.n.0/24, public IP 192.168.1.n). */
  peer(n: number): Lease
  /** Asserts what a programmed peer looks like in the kernel. */
  assertProgrammed(kernel: MemoryKernel, peer: Lease): Promise<void>
  /**
   * The data-plane state compared before and after (default: the kernel snapshot); a backend
   * that programs something else (extension: the operator's commands) observes that instead.
   */
  state?(kernel: MemoryKernel): Promise<unknown>
  /** Data-plane writes so far (default: kernel replace/delete/append calls), for idempotence. */
  writes?(kernel: MemoryKernel): Promise<number>
}

const kernelWrites = (kernel: MemoryKernel): number => kernel.ops.filter((o) => /^(replace|delete|append)/.test(o.op)).length

interface Running {
  kernel: MemoryKernel
  sm: FakeSubnetManager
  logger: MemoryLogger
  network: Network
  ac: AbortController
  done: Promise<void>
  /** Waits until every result pushed so far was processed (an ignored lease acts as a marker). */
  barrier(): Promise<void>
  stop(): Promise<void>
}

let markers = 0

async function start(h: BackendHarness): Promise<Running> {
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  const logger = new MemoryLogger()
  const backend = h.create({ subnetManager: sm, extIface, kernel, logger, clock: new FakeClock() })
  const ac = new AbortController()
  const network = await backend.registerNetwork(h.config, ac.signal)
  const done = network.run(ac.signal)
  const barrier = async (): Promise<void> => {
    const n = 200 + (markers++ % 50)
    const marker = lease({ type: 'marker', subnet: `10.5.${n}.0/24`, publicIP: `192.168.2.${n}` })
    const seen = (): boolean => logger.entries.some((e) => e.level === 'warn' && String(e.fields.lease).startsWith(`10.5.${n}.0/24`))
    const before = logger.entries.length
    sm.added(marker)
    await until(() => logger.entries.length > before && seen())
    sm.removed(marker)
    await settle()
  }
  return {
    kernel, sm, logger, network, ac, done, barrier,
    stop: async () => {
      ac.abort()
      await done
    },
  }
}

export function backendSuite(name: string, h: BackendHarness): void {
  const state = (k: MemoryKernel): Promise<unknown> => h.state ? h.state(k) : Promise.resolve(k.snapshot())
  const writes = (k: MemoryKernel): Promise<number> => h.writes ? h.writes(k) : Promise.resolve(kernelWrites(k))
  test(`${name}: registerNetwork acquires a lease tagged with its type`, async () => {
    const r = await start(h)
    try {
      assert.equal(r.sm.acquired.length, 1)
      assert.equal(r.sm.acquired[0]?.backendType, h.type)
      assert.equal(r.network.lease.attrs.backendType, h.type)
      assert.ok(r.network.mtu > 0)
    } finally {
      await r.stop()
    }
  })

  test(`${name}: added programs the peer; removed restores the previous snapshot`, async () => {
    const r = await start(h)
    try {
      await r.barrier()
      const before = await state(r.kernel)
      r.sm.added(h.peer(3))
      await r.barrier()
      await h.assertProgrammed(r.kernel, h.peer(3))
      assert.notDeepEqual(await state(r.kernel), before)
      r.sm.removed(h.peer(3))
      await r.barrier()
      assert.deepEqual(await state(r.kernel), before)
    } finally {
      await r.stop()
    }
  })

  test(`${name}: leases of another backend type are ignored with a warning`, async () => {
    const r = await start(h)
    try {
      await r.barrier()
      const before = await state(r.kernel)
      const other = lease({ type: h.type === 'udp' ? 'vxlan' : 'udp', subnet: '10.5.9.0/24', publicIP: '192.168.1.9' })
      r.sm.added(other)
      await r.barrier()
      assert.deepEqual(await state(r.kernel), before)
      const warnings = r.logger.entries.filter((e) => e.level === 'warn' && String(e.fields.lease).startsWith('10.5.9.0/24'))
      assert.equal(warnings.length, 1)
      assert.match(warnings[0]?.msg ?? '', new RegExp(`ignoring non-${h.type} subnet`))
    } finally {
      await r.stop()
    }
  })

  test(`${name}: replaying a batch is idempotent`, async () => {
    const r = await start(h)
    try {
      const batch = [h.peer(3), h.peer(4), h.peer(5)]
      r.sm.added(...batch)
      await r.barrier()
      const once = await state(r.kernel)
      const before = await writes(r.kernel)
      r.sm.added(...batch)
      r.sm.snapshot(...batch)
      await r.barrier()
      assert.deepEqual(await state(r.kernel), once)
      // Only the barrier markers' bookkeeping may run; no peer is re-programmed.
      assert.equal(await writes(r.kernel), before)
    } finally {
      await r.stop()
    }
  })

  test(`${name}: a snapshot reset converges (absent peers removed, new ones added)`, async () => {
    const r = await start(h)
    try {
      await r.barrier()
      const empty = await state(r.kernel)
      r.sm.added(h.peer(3), h.peer(4), h.peer(5))
      await r.barrier()
      r.sm.snapshot(h.peer(4), h.peer(6))
      await r.barrier()
      await h.assertProgrammed(r.kernel, h.peer(4))
      await h.assertProgrammed(r.kernel, h.peer(6))
      r.sm.removed(h.peer(4), h.peer(6))
      await r.barrier()
      // Nothing of 3 and 5 is left behind.
      assert.deepEqual(await state(r.kernel), empty)
    } finally {
      await r.stop()
    }
  })

  test(`${name}: run() resolves within 1 s of abort`, async () => {
    const r = await start(h)
    r.sm.added(h.peer(3))
    await r.barrier()
    const t0 = Date.now()
    r.ac.abort()
    await Promise.race([r.done, new Promise((_, reject) => setTimeout(() => reject(new Error('run() did not resolve within 1 s')), 1000).unref())])
    assert.ok(Date.now() - t0 < 1000)
  })
}
