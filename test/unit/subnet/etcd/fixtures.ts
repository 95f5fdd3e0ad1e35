/**
 * Small hand-built network configs for subnet manager tests, so they do not depend on the
 * config parser: `{"Network":"10.3.0.0/16","SubnetMin":...,"SubnetMax":...,"SubnetLen":24}`
 * (plus IPv6Network / IPv6SubnetLen) with flannel's defaults.
 */
import type { FamilyConfig, NetworkConfig } from '../../../../src/config/network-config.ts'
import { parseCidr, parseIp, type IpAddr, type IpNet, type Family } from '../../../../src/ip/ip.ts'
import { until as untilShared } from '../../../helpers/wait.ts'

export const net = (s: string): IpNet => {
  const n = parseCidr(s)
  if (!n) throw new Error(`bad cidr ${s}`)
  return n
}
export const ip = (s: string): IpAddr => {
  const a = parseIp(s)
  if (!a) throw new Error(`bad ip ${s}`)
  return a
}

function family(network: IpNet, len: number | undefined, min: string | undefined, max: string | undefined, fam: Family): FamilyConfig {
  const subnetLen = len ?? (fam === 4 ? 24 : 64)
  const bits = fam === 4 ? 32 : 128
  const step = 1n << BigInt(bits - subnetLen)
  const last = network.addr + (1n << BigInt(bits - network.prefix)) - step
  return {
    network,
    subnetLen,
    subnetMin: min ? ip(min) : { family: fam, value: network.addr + step },
    subnetMax: max ? ip(max) : { family: fam, value: last },
  }
}

/** A minimal parseConfig for tests: Network/SubnetLen/SubnetMin/SubnetMax and the IPv6 twins. */
export function testParseConfig(json: string): NetworkConfig {
  const raw = JSON.parse(json) as Record<string, unknown>
  const v4 = raw['Network'] ? family(net(raw['Network'] as string), raw['SubnetLen'] as number | undefined, raw['SubnetMin'] as string | undefined, raw['SubnetMax'] as string | undefined, 4) : undefined
  const v6 = raw['IPv6Network'] ? family(net(raw['IPv6Network'] as string), raw['IPv6SubnetLen'] as number | undefined, raw['IPv6SubnetMin'] as string | undefined, raw['IPv6SubnetMax'] as string | undefined, 6) : undefined
  const backend = (raw['Backend'] as { Type?: string } | undefined)?.Type ?? 'udp'
  return {
    enableIPv4: v4 !== undefined,
    enableIPv6: v6 !== undefined,
    ...(v4 ? { ipv4: v4 } : {}),
    ...(v6 ? { ipv6: v6 } : {}),
    enableNFTables: false,
    backend: { type: backend, options: {} },
  }
}

/** Waits (real time, bounded) until `cond` holds; for letting async iterators park. */
export function until(cond: () => boolean, ms = 2000): Promise<void> {
  return untilShared(cond, { timeoutMs: ms, everyMs: 0 })
}
