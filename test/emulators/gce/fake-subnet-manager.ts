/** A tiny SubnetManager for cloud-backend tests: hands out one fixed lease and records the request. */
import type { SubnetManager } from '../../../src/subnet/subnet-manager.ts'
import type { Lease, LeaseAttrs, LeaseWatchResult } from '../../../src/lease/lease.ts'
import type { NetworkConfig } from '../../../src/config/network-config.ts'
import { parseCidr, parseIp } from '../../../src/ip/ip.ts'
import type { BackendDeps } from '../../../src/backend/backend.ts'
import type { Kernel } from '../../../src/kernel/kernel.ts'
import type { Clock } from '../../../src/util/clock.ts'
import type { Logger } from '../../../src/log/logger.ts'

export class FakeSubnetManager implements SubnetManager {
  readonly name = 'fake'
  readonly acquired: LeaseAttrs[] = []
  constructor(readonly subnet = '10.40.12.0/24') {}

  async getNetworkConfig(): Promise<NetworkConfig> { return testNetworkConfig('unused') }
  async acquireLease(_config: NetworkConfig, attrs: LeaseAttrs): Promise<Lease> {
    this.acquired.push(attrs)
    return { subnet: parseCidr(this.subnet)!, attrs, expiration: Date.now() + 86_400_000 }
  }
  async renewLease(lease: Lease): Promise<Lease> { return lease }
  async listLeases(): Promise<Lease[]> { return [] }
  async *watchLeases(): AsyncIterable<LeaseWatchResult> {}
  async *watchLease(): AsyncIterable<LeaseWatchResult> {}
  async close(): Promise<void> {}
}

export function testNetworkConfig(type: string): NetworkConfig {
  return {
    enableIPv4: true,
    enableIPv6: false,
    ipv4: { network: parseCidr('10.40.0.0/16')!, subnetLen: 24, subnetMin: parseIp('10.40.1.0')!, subnetMax: parseIp('10.40.255.0')! },
    enableNFTables: false,
    backend: { type, options: {} },
  }
}

/** BackendDeps for a cloud backend: no kernel use expected, so every kernel call throws. */
export function cloudDeps(subnetManager: SubnetManager, logger: Logger, clock: Clock): BackendDeps {
  const kernel = new Proxy({}, { get: (_t, p) => () => { throw new Error(`cloud backend must not call kernel.${String(p)}`) } }) as Kernel
  return {
    subnetManager,
    extIface: { name: 'eth0', index: 2, mtu: 1460, ifaceAddr: parseIp('10.128.0.5')!, extAddr: parseIp('10.128.0.5')! },
    kernel,
    logger,
    clock,
  }
}
