/** The ipip `Backend` section (flannel pkg/backend/ipip/ipip.go: DirectRouting only). */
import { boolOption, rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export interface IpipOptions {
  /** Peers on the same L2 segment get a plain route via their public IP, no tunnel. */
  readonly directRouting: boolean
}

export function parseIpipOptions(section: OptionSection): IpipOptions {
  rejectUnknownOptions(section, ['DirectRouting'], 'ipip')
  return Object.freeze({ directRouting: boolOption(section, 'DirectRouting', false) })
}
