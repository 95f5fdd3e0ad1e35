/**
 * Route quota check shared by cloud backends: say plainly, before the cloud refuses, that the
 * cluster has outgrown the table (how many routes exist, the limit, what to do).
 */
import { WeftError } from '../../errors.ts'

export interface RouteLimitInput {
  /** Cloud name for the message (`aws`, `gce`, `alibaba`). */
  readonly provider: string
  /** What holds the routes (`route table rtb-0abc`, `project my-proj`). */
  readonly scope: string
  /** Routes already in the scope (all of them: the quota counts every route). */
  readonly existing: number
  /** Routes this host is about to add (usually 1; 0 when only correcting in place). */
  readonly adding: number
  /** The quota (`50` for an AWS route table by default). */
  readonly limit: number
  /** The destination being added, for the message. */
  readonly destination: string
  /** What the operator can do; provider-specific. */
  readonly hint: string
}

/** Returns a CLOUD_ROUTE_LIMIT error when the addition would exceed the quota, else undefined. */
export function checkRouteLimit(input: RouteLimitInput): WeftError | undefined {
  if (input.adding <= 0 || input.existing + input.adding <= input.limit) return undefined
  return new WeftError(
    'CLOUD_ROUTE_LIMIT',
    `${input.scope} already holds ${input.existing} routes and the ${input.provider} limit is ${input.limit}: ` +
      `cannot add the route for ${input.destination}; ${input.hint}`,
    { details: { provider: input.provider, scope: input.scope, existing: input.existing, limit: input.limit, destination: input.destination } },
  )
}

/** True when the scope is at or above `warnRatio` of the limit (for an early warning log). */
export function nearRouteLimit(existing: number, limit: number, warnRatio = 0.9): boolean {
  return limit > 0 && existing >= Math.floor(limit * warnRatio)
}
