/**
 * Shared fixtures for backend tests: a scriptable SubnetManager whose lease watch is fed by the
 * test, a host with an `eth0` underlay in a MemoryKernel, and lease/config builders.
 */
import type { ExternalInterface } from '../../../src/backend/backend.ts'
import type { NetworkConfig } from '../../../src/config/network-config.ts'
import type { Lease, LeaseAttrs, LeaseEvent, LeaseWatchResult } from '../../../src/lease/lease.ts'
import type { SubnetManager } from '../../../src/subnet/subnet-manager.ts'
import { parseCidr, parseIp, type IpAddr, type IpNet } from '../../../src/ip/ip.ts'
import { MemoryKernel } from '../../../src/kernel/memory/memory-kernel.ts'
import { until as untilShared } from '../../helpers/wait.ts'

export const ip = (text: string): IpAddr => parseIp(text) ?? assertNever(text)
export const net = (text: string): IpNet => parseCidr(text) ?? assertNever(text)

function assertNever(text: string): never {
  throw new Error(`bad fixture address ${text}`)
}

export interface LeaseSpec {
  subnet?: string
  ipv6Subnet?: string
  publicIP?: string
  publicIPv6?: string
  type?: string
  data?: unknown
  v6data?: unknown
}

export function lease(spec: LeaseSpec): Lease {
  const attrs: LeaseAttrs = {
    backendType: spec.type ?? 'host-gw',
    ...(spec.publicIP ? { publicIP: ip(spec.publicIP) } : {}),
    ...(spec.publicIPv6 ? { publicIPv6: ip(spec.publicIPv6) } : {}),
    ...(spec.data === undefined ? {} : { backendData: spec.data }),
    ...(spec.v6data === undefined ? {} : { backendV6Data: spec.v6data }),
  }
  return {
    attrs,
    ...(spec.subnet ? { subnet: net(spec.subnet) } : {}),
    ...(spec.ipv6Subnet ? { ipv6Subnet: net(spec.ipv6Subnet) } : {}),
  }
}

export function config(opts: { v4?: string; v6?: string; type?: string; options?: unknown } = {}): NetworkConfig {
  const v4 = opts.v4 ?? (opts.v6 ? undefined : '10.5.0.0/16')
  const fam = (text: string, len: number) => {
    const n = net(text)
    return { network: n, subnetLen: len, subnetMin: { family: n.family, value: n.addr }, subnetMax: { family: n.family, value: n.addr } }
  }
  return {
    enableIPv4: v4 !== undefined,
    enableIPv6: opts.v6 !== undefined,
    ...(v4 ? { ipv4: fam(v4, 24) } : {}),
    ...(opts.v6 ? { ipv6: fam(opts.v6, 64) } : {}),
    enableNFTables: false,
    backend: { type: opts.type ?? 'host-gw', options: opts.options ?? {} },
  }
}

/** A push-fed async queue: the lease watch of a FakeSubnetManager. */
class Channel<T> {
  private readonly items: T[] = []
  private waiter: (() => void) | undefined
  push(item: T): void {
    this.items.push(item)
    this.waiter?.()
  }
  async *iterate(signal: AbortSignal): AsyncGenerator<T> {
    while (!signal.aborted) {
      const item = this.items.shift()
      if (item !== undefined) {
        yield item
        continue
      }
      let onAbort = (): void => {}
      await new Promise<void>((resolve) => {
        this.waiter = resolve
        onAbort = () => resolve()
        signal.addEventListener('abort', onAbort, { once: true })
      })
      signal.removeEventListener('abort', onAbort)
      this.waiter = undefined
    }
  }
}

/** SubnetManager double: acquire hands out the configured subnets; the watch is fed by the test. */
export class FakeSubnetManager implements SubnetManager {
  readonly name = 'fake'
  readonly acquired: LeaseAttrs[] = []
  /** Every watchLeases call gets its own channel; `push` feeds the latest. */
  private channel = new Channel<LeaseWatchResult>()
  watchCalls = 0

  constructor(
    private readonly own: { subnet?: string; ipv6Subnet?: string },
    private readonly initial: readonly Lease[] = [],
  ) {}

  async getNetworkConfig(): Promise<NetworkConfig> {
    return config()
  }

  async acquireLease(_config: NetworkConfig, attrs: LeaseAttrs): Promise<Lease> {
    this.acquired.push(attrs)
    return {
      attrs,
      ...(this.own.subnet ? { subnet: net(this.own.subnet) } : {}),
      ...(this.own.ipv6Subnet ? { ipv6Subnet: net(this.own.ipv6Subnet) } : {}),
    }
  }

  async renewLease(lease: Lease): Promise<Lease> {
    return lease
  }

  /** A one-off listing (vxlan looks up its previous lease). */
  listCalls = 0
  async listLeases(): Promise<Lease[]> {
    this.listCalls++
    return [...this.initial]
  }

  watchLeases(own: Lease | undefined, signal: AbortSignal): AsyncIterable<LeaseWatchResult> {
    this.watchCalls++
    // A watch without `own` is a one-off listing (vxlan looks up its previous lease).
    if (own === undefined) {
      const initial = this.initial
      return (async function* () { yield { kind: 'snapshot' as const, leases: initial } })()
    }
    this.channel = new Channel<LeaseWatchResult>()
    return this.channel.iterate(signal)
  }

  watchLease(): AsyncIterable<LeaseWatchResult> {
    return (async function* () {})()
  }

  async close(): Promise<void> {}

  push(result: LeaseWatchResult): void {
    this.channel.push(result)
  }

  added(...leases: Lease[]): void {
    this.push({ kind: 'events', events: leases.map((l): LeaseEvent => ({ type: 'added', lease: l })) })
  }

  removed(...leases: Lease[]): void {
    this.push({ kind: 'events', events: leases.map((l): LeaseEvent => ({ type: 'removed', lease: l })) })
  }

  snapshot(...leases: Lease[]): void {
    this.push({ kind: 'snapshot', leases })
  }
}

export interface HostOptions {
  v4?: string
  v6?: string
  mtu?: number
  publicIP?: string
  publicIPv6?: string
}

/** A MemoryKernel with an up `eth0` (a TUN link stands in for the NIC) carrying the given addresses. */
export async function host(opts: HostOptions = { v4: '192.168.1.2/24' }): Promise<{ kernel: MemoryKernel; extIface: ExternalInterface }> {
  const kernel = new MemoryKernel()
  const dev = await kernel.openTun({ name: 'eth0' })
  await kernel.setLink(dev.index, { up: true, mtu: opts.mtu ?? 1500 })
  const extIface: { -readonly [K in keyof ExternalInterface]: ExternalInterface[K] } = { name: 'eth0', index: dev.index, mtu: opts.mtu ?? 1500 }
  for (const text of [opts.v4, opts.v6]) {
    if (!text) continue
    const [addr, prefix] = text.split('/') as [string, string]
    const a = ip(addr)
    await kernel.replaceAddr({ index: dev.index, ip: a, prefix: Number(prefix) })
    if (a.family === 4) {
      extIface.ifaceAddr = a
      extIface.extAddr = opts.publicIP ? ip(opts.publicIP) : a
    } else {
      extIface.ifaceV6Addr = a
      extIface.extV6Addr = opts.publicIPv6 ? ip(opts.publicIPv6) : a
    }
  }
  return { kernel, extIface }
}

/** Lets queued microtasks, immediates and kernel notifications run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/** Polls `cond` (real time) until true; fails after `ms`. */
export function until(cond: () => boolean, ms = 5000): Promise<void> {
  return untilShared(cond, { timeoutMs: ms })
}
