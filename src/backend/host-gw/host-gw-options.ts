/** The host-gw `Backend` section: flannel's host-gw takes no options besides Type. */
import { rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export type HostGwOptions = Readonly<Record<string, never>>

/** Accepts an empty section (after `type` was removed), or one with the Windows-only Name. */
export function parseHostGwOptions(section: OptionSection): HostGwOptions {
  // Name (the Windows bridge network, e.g. "cbr0") is read by flannel on Windows only.
  rejectUnknownOptions(section, [], 'host-gw', ['Name'])
  return Object.freeze({})
}
