/**
 * Helpers for the backends' `parseOptions`: the `Backend` section arrives with lower-cased keys
 * (Go's case-insensitive field match already applied, `type` removed). flannel silently ignores
 * unknown keys; weft rejects them and lists the known ones, so a typo like "VNII" is caught.
 */
import { ConfigError } from '../errors.ts'

export type OptionSection = Readonly<Record<string, unknown>>

/**
 * Throws for any key not in `known` (display spellings, e.g. ['VNI', 'Port']).
 * @param backendType used in the message when the backend takes no options at all
 * @param tolerated keys accepted without effect, e.g. flannel-on-Windows keys ("Name") found in
 *   configs shared by mixed Linux/Windows clusters, which flannel on Linux ignores
 */
export function rejectUnknownOptions(section: OptionSection, known: readonly string[], backendType: string, tolerated: readonly string[] = []): void {
  const lower = new Set([...known, ...tolerated].map((k) => k.toLowerCase()))
  for (const key of Object.keys(section)) {
    if (lower.has(key)) continue
    const rule = known.length === 0
      ? `unknown key "${key}"; the ${backendType} backend takes no options besides Type`
      : `unknown key "${key}"; expected one of Type, ${known.join(', ')}`
    throw new ConfigError('Backend', rule)
  }
}

/** Reads an integer option in [min, max]; absent or null gives `fallback` (Go leaves the default). */
export function intOption(section: OptionSection, name: string, range: { min: number; max: number; fallback: number }): number {
  const value = section[name.toLowerCase()]
  if (value === undefined || value === null) return range.fallback
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ConfigError(`Backend.${name}`, `must be an integer, got ${describe(value)}`)
  }
  if (value < range.min || value > range.max) {
    throw new ConfigError(`Backend.${name}`, `must be in ${range.min}..${range.max}, got ${value}`)
  }
  return value
}

/** Reads a boolean option; it must be a JSON boolean (the string "true" is refused, as in Go). */
export function boolOption(section: OptionSection, name: string, fallback: boolean): boolean {
  const value = section[name.toLowerCase()]
  if (value === undefined || value === null) return fallback
  if (typeof value !== 'boolean') throw new ConfigError(`Backend.${name}`, `must be a boolean (true or false), got ${describe(value)}`)
  return value
}

/** Short description of a JSON value for messages: `string "8472"`, `number 1.5`, `array`. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`
  return typeof value
}
