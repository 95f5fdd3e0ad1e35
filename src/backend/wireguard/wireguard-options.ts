/** The wireguard `Backend` section (flannel pkg/backend/wireguard/wireguard.go option struct). */
import { ConfigError } from '../../errors.ts'
import { describe, intOption, rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export type WireGuardMode = 'separate' | 'auto' | 'ipv4' | 'ipv6'
const MODES: readonly WireGuardMode[] = ['separate', 'auto', 'ipv4', 'ipv6']

export interface WireGuardOptions {
  /** UDP port of flannel-wg (IPv4, or the only device outside separate mode). Default 51820. */
  readonly listenPort: number
  /** UDP port of flannel-wg-v6 (separate mode). Default 51821. */
  readonly listenPortV6: number
  /** Underlay MTU; 0 takes the external interface's. Devices get MTU − 80. */
  readonly mtu: number
  /** Pre-shared key (base64, 32 bytes, `wg genpsk`), added to every peer; undefined = none. */
  readonly psk?: string
  /** Seconds between keepalives to each peer; 0 = off. */
  readonly persistentKeepaliveInterval: number
  /** separate: one device per family; auto/ipv4/ipv6: one device carrying both families. */
  readonly mode: WireGuardMode
}

const KNOWN = ['ListenPort', 'ListenPortV6', 'MTU', 'PSK', 'PersistentKeepaliveInterval', 'Mode'] as const
const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/

/** Validates the section (keys lower-cased, `type` removed) and fills flannel's defaults. */
export function parseWireGuardOptions(section: OptionSection): WireGuardOptions {
  rejectUnknownOptions(section, KNOWN, 'wireguard')
  const mtu = intOption(section, 'MTU', { min: 0, max: 65535, fallback: 0 })
  // The device MTU is MTU − 80, and IPv4 needs at least 68.
  if (mtu !== 0 && mtu < 148) throw new ConfigError('Backend.MTU', `must be 0 (take the interface MTU) or in 148..65535 (the device gets MTU − 80), got ${mtu}`)
  const psk = section['psk']
  if (psk !== undefined && psk !== null && psk !== '') {
    if (typeof psk !== 'string' || !BASE64_KEY.test(psk.trim())) {
      throw new ConfigError('Backend.PSK', `must be a WireGuard key: 32 bytes in base64 (44 characters, as \`wg genpsk\` prints), got ${typeof psk === 'string' ? `a string of ${psk.length} characters` : describe(psk)}`)
    }
  }
  const mode = section['mode'] ?? 'separate'
  // flannel's Mode is a Go string compared exactly: "Auto" is refused there too.
  if (typeof mode !== 'string' || !MODES.includes(mode as WireGuardMode)) {
    throw new ConfigError('Backend.Mode', `must be one of ${MODES.join(', ')}, got ${describe(mode)}`)
  }
  // Port 0 would let the kernel pick a port that peers cannot know.
  return Object.freeze({
    listenPort: intOption(section, 'ListenPort', { min: 1, max: 65535, fallback: 51820 }),
    listenPortV6: intOption(section, 'ListenPortV6', { min: 1, max: 65535, fallback: 51821 }),
    mtu,
    ...(typeof psk === 'string' && psk !== '' ? { psk: psk.trim() } : {}),
    persistentKeepaliveInterval: intOption(section, 'PersistentKeepaliveInterval', { min: 0, max: 65535, fallback: 0 }),
    mode: mode as WireGuardMode,
  })
}
