/** The vxlan `Backend` section (flannel pkg/backend/vxlan/vxlan.go option struct). */
import { ConfigError } from '../../errors.ts'
import { boolOption, intOption, rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export interface VxlanOptions {
  /** VXLAN network identifier, 1..2^24-1; the device is `flannel.<vni>`. Default 1. */
  readonly vni: number
  /** UDP port; 0 leaves the kernel default (8472). */
  readonly port: number
  /** Group Based Policy extension. */
  readonly gbp: boolean
  /** Kernel MAC learning on the device (flannel default: nolearning). */
  readonly learning: boolean
  /** Route directly via the peer's public IP when it is on the same L2 segment. */
  readonly directRouting: boolean
  /** Underlay MTU; 0 takes the external interface's MTU. The device gets MTU − 50. */
  readonly mtu: number
}

const KNOWN = ['VNI', 'Port', 'GBP', 'Learning', 'DirectRouting', 'MTU'] as const

/** Validates the section (keys lower-cased, `type` removed) and fills flannel's defaults. */
export function parseVxlanOptions(section: OptionSection): VxlanOptions {
  // Name and MacPrefix are read by flannel on Windows only; shared configs carry them.
  rejectUnknownOptions(section, KNOWN, 'vxlan', ['Name', 'MacPrefix'])
  const mtu = intOption(section, 'MTU', { min: 0, max: 65535, fallback: 0 })
  // 68 is the IPv4 minimum link MTU (RFC 791); 0 means "take the interface MTU".
  if (mtu !== 0 && mtu < 68) throw new ConfigError('Backend.MTU', `must be 0 (take the interface MTU) or in 68..65535, got ${mtu}`)
  return Object.freeze({
    vni: intOption(section, 'VNI', { min: 1, max: 2 ** 24 - 1, fallback: 1 }),
    port: intOption(section, 'Port', { min: 0, max: 65535, fallback: 0 }),
    gbp: boolOption(section, 'GBP', false),
    learning: boolOption(section, 'Learning', false),
    directRouting: boolOption(section, 'DirectRouting', false),
    mtu,
  })
}
