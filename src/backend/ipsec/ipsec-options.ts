/** The ipsec `Backend` section (flannel pkg/backend/ipsec/ipsec.go). */
import { ConfigError } from '../../errors.ts'
import { boolOption, describe, rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export const DEFAULT_ESP_PROPOSAL = 'aes128gcm16-sha256-prfsha256-ecp256'
export const MIN_PSK_LENGTH = 96

export interface IpsecOptions {
  /** Pre-shared key of every host, at least 96 characters. */
  readonly psk: string
  /** ESP in UDP (port 4500), for NAT between hosts. */
  readonly udpEncap: boolean
  readonly espProposal: string
}

export function parseIpsecOptions(section: OptionSection): IpsecOptions {
  rejectUnknownOptions(section, ['PSK', 'UDPEncap', 'ESPProposal'], 'ipsec')
  const psk = section['psk']
  if (typeof psk !== 'string') throw new ConfigError('Backend.PSK', `is required: a pre-shared key of at least ${MIN_PSK_LENGTH} characters (e.g. \`openssl rand -hex 64\`), got ${psk === undefined ? 'none' : describe(psk)}`)
  // flannel says only "password is too short".
  if (psk.length < MIN_PSK_LENGTH) throw new ConfigError('Backend.PSK', `must be at least ${MIN_PSK_LENGTH} characters, got ${psk.length}`)
  const esp = section['espproposal'] ?? DEFAULT_ESP_PROPOSAL
  if (typeof esp !== 'string' || !/^[a-z0-9_-]+$/.test(esp)) throw new ConfigError('Backend.ESPProposal', `must be a strongSwan proposal like ${DEFAULT_ESP_PROPOSAL}, got ${describe(esp)}`)
  return Object.freeze({ psk, udpEncap: boolOption(section, 'UDPEncap', false), espProposal: esp })
}
