/**
 * The aws-vpc `Backend` section: flannel's `RouteTableID` (a string or a list of strings) plus
 * weft's optional `RouteLimit` (the table quota the daemon checks before adding a route).
 */
import { ConfigError } from '../../errors.ts'

/** AWS's default quota of (non-propagated) routes per route table. */
export const AWS_DEFAULT_ROUTE_LIMIT = 50

export interface AwsVpcOptions {
  /** Route tables to program; empty means auto-detect (the ENI subnet's table, else the VPC's main table). */
  readonly routeTableIds: readonly string[]
  /** Routes allowed per table; raise it after AWS raised your quota (max 1000). */
  readonly routeLimit: number
}

const KNOWN: Readonly<Record<string, string>> = { type: 'Type', routetableid: 'RouteTableID', routelimit: 'RouteLimit' }

/**
 * Validates the section before any side effect. Keys are matched case-insensitively (the
 * registry lower-cases them; flannel's JSON decoding is case-insensitive too).
 */
export function parseAwsVpcOptions(section: Readonly<Record<string, unknown>>): AwsVpcOptions {
  let routeTableIds: string[] = []
  let routeLimit = AWS_DEFAULT_ROUTE_LIMIT
  for (const [rawKey, value] of Object.entries(section)) {
    const key = rawKey.toLowerCase()
    if (!(key in KNOWN)) {
      throw new ConfigError(`Backend.${rawKey}`, `unknown option for the aws-vpc backend; expected one of ${Object.values(KNOWN).join(', ')}`)
    }
    if (key === 'routetableid') routeTableIds = parseTableIds(value)
    if (key === 'routelimit') routeLimit = parseLimit(value)
  }
  return Object.freeze({ routeTableIds: Object.freeze(routeTableIds), routeLimit })
}

function parseTableIds(value: unknown): string[] {
  const field = 'Backend.RouteTableID'
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list)) throw new ConfigError(field, 'must be a string or a list of strings')
  const ids: string[] = []
  for (const [i, id] of list.entries()) {
    if (typeof id !== 'string') throw new ConfigError(field, `entry ${i} must be a string`)
    const trimmed = id.trim()
    if (trimmed === '') throw new ConfigError(field, `entry ${i} must not be empty`)
    if (/\s/.test(trimmed)) throw new ConfigError(field, `entry ${i} must not contain spaces: ${JSON.stringify(id)}`)
    if (ids.includes(trimmed)) throw new ConfigError(field, `lists ${trimmed} twice`)
    ids.push(trimmed)
  }
  return ids
}

function parseLimit(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1000) {
    throw new ConfigError('Backend.RouteLimit', `must be an integer from 1 to 1000: ${JSON.stringify(value)}`)
  }
  return value
}
