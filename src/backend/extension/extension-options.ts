/** The extension `Backend` section (flannel pkg/backend/extension/extension.go option struct). */
import { ConfigError } from '../../errors.ts'
import { describe, rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export interface ExtensionOptions {
  /** Run before the lease is acquired; its stdout becomes this host's BackendData (a JSON string). */
  readonly preStartupCommand: readonly string[]
  /** Run after the lease is acquired, with NETWORK, SUBNET, IPV6SUBNET, PUBLIC_IP, PUBLIC_IPV6. */
  readonly postStartupCommand: readonly string[]
  /** Run per remote lease added, with SUBNET and PUBLIC_IP; the remote BackendData on stdin. */
  readonly subnetAddCommand: readonly string[]
  /** Run per remote lease removed, as SubnetAddCommand. */
  readonly subnetRemoveCommand: readonly string[]
}

const KNOWN = ['PreStartupCommand', 'PostStartupCommand', 'SubnetAddCommand', 'SubnetRemoveCommand'] as const

/** Validates the section: each command is a string (split on whitespace, as Go's strings.Fields); absent or "" = none. */
export function parseExtensionOptions(section: OptionSection): ExtensionOptions {
  rejectUnknownOptions(section, KNOWN, 'extension')
  const command = (name: (typeof KNOWN)[number]): readonly string[] => {
    const value = section[name.toLowerCase()]
    if (value === undefined || value === null) return []
    if (typeof value !== 'string') throw new ConfigError(`Backend.${name}`, `must be a string (a command line, split on whitespace), got ${describe(value)}`)
    if (value.includes('\0')) throw new ConfigError(`Backend.${name}`, 'must not contain a NUL character')
    return splitCommand(value)
  }
  return Object.freeze({
    preStartupCommand: command('PreStartupCommand'),
    postStartupCommand: command('PostStartupCommand'),
    subnetAddCommand: command('SubnetAddCommand'),
    subnetRemoveCommand: command('SubnetRemoveCommand'),
  })
}

/** Splits like Go's strings.Fields: runs of Unicode white space separate fields. */
export function splitCommand(line: string): string[] {
  return line.split(/\s+/u).filter((f) => f !== '')
}
