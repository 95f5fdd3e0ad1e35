/** The host-gw `Backend` section: flannel's host-gw takes no options besides Type. */
import { rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export type HostGwOptions = Readonly<Record<string, never>>

/** Accepts only an empty section (after `type` was removed). */
export function parseHostGwOptions(section: OptionSection): HostGwOptions {
  rejectUnknownOptions(section, [], 'host-gw')
  return Object.freeze({})
}
