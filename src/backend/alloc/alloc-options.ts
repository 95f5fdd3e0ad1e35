/** The alloc `Backend` section: no options besides Type. */
import { rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export type AllocOptions = Readonly<Record<string, never>>

/** Accepts only an empty section (after `type` was removed). */
export function parseAllocOptions(section: OptionSection): AllocOptions {
  rejectUnknownOptions(section, [], 'alloc')
  return Object.freeze({})
}
