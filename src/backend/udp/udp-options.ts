/** The udp `Backend` section (flannel pkg/backend/udp/udp.go). */
import { intOption, rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export interface UdpOptions {
  /** UDP port the proxy binds on the interface address and sends to on peers. Default 8285. */
  readonly port: number
}

/** Validates the section (keys lower-cased, `type` removed) and fills flannel's defaults. */
export function parseUdpOptions(section: OptionSection): UdpOptions {
  rejectUnknownOptions(section, ['Port'], 'udp')
  return Object.freeze({ port: intOption(section, 'Port', { min: 1, max: 65535, fallback: 8285 }) })
}
