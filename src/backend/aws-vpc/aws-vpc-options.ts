/**
 * The aws-vpc `Backend` section: flannel's `RouteTableID` (a string or a list of strings) plus
 * weft's optional `RouteLimit` (the table quota the daemon checks before adding a route).
 */
import { ConfigError } from '../../errors.ts'
import { describe, intOption, rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

/** AWS's default quota of (non-propagated) routes per route table. */
export const AWS_DEFAULT_ROUTE_LIMIT = 50

export interface AwsVpcOptions {
  /** Route tables to program; empty means auto-detect (the ENI subnet's table, else the VPC's main table). */
  readonly routeTableIds: readonly string[]
  /** Routes allowed per table (default 50); raise it after AWS raised your quota (max 1000). */
  readonly routeLimit: number
}

const KNOWN = ['RouteTableID', 'RouteLimit'] as const

/** Validates the section (keys lower-cased, `type` removed) before any side effect. */
export function parseAwsVpcOptions(section: OptionSection): AwsVpcOptions {
  rejectUnknownOptions(section, KNOWN, 'aws-vpc')
  return Object.freeze({
    routeTableIds: Object.freeze(parseTableIds(section.routetableid)),
    routeLimit: intOption(section, 'RouteLimit', { min: 1, max: 1000, fallback: AWS_DEFAULT_ROUTE_LIMIT }),
  })
}

function parseTableIds(value: unknown): string[] {
  const field = 'Backend.RouteTableID'
  if (value === undefined || value === null) return []
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list)) throw new ConfigError(field, `must be a string or a list of strings, got ${describe(value)}`)
  const ids: string[] = []
  for (const [i, id] of list.entries()) {
    if (typeof id !== 'string') throw new ConfigError(field, `entry ${i} must be a string, got ${describe(id)}`)
    const trimmed = id.trim()
    if (trimmed === '') throw new ConfigError(field, `entry ${i} must not be empty`)
    if (/\s/.test(trimmed)) throw new ConfigError(field, `entry ${i} must be a route table id without spaces, got ${JSON.stringify(id)}`)
    if (ids.includes(trimmed)) throw new ConfigError(field, `must not list ${trimmed} twice`)
    ids.push(trimmed)
  }
  return ids
}
