/**
 * Pure decisions of the ali-vpc backend: given a route table, which entries go (stale entries
 * of this instance inside the flannel network, and another instance's entry for our subnet),
 * whether ours must be created, and whether the table has room for it.
 */
import type { IpNet } from '../../ip/ip.ts'
import { formatCidr, netContainsNet, parseCidr } from '../../ip/ip.ts'
import type { AliRouteEntry } from './vpc-routes-api.ts'

/** Custom route entries per VRouter route table (Alibaba's default quota). */
export const ALI_ROUTE_LIMIT = 50

export interface AliRoutePlanInput {
  readonly entries: readonly AliRouteEntry[]
  readonly instanceId: string
  /** This host's subnet. */
  readonly subnet: IpNet
  /** The flannel Network: only entries inside it are ours to clean. */
  readonly network: IpNet
}

export interface AliRoutePlan {
  /** Entries to delete before creating ours, each with the reason. */
  readonly deletes: readonly { readonly entry: AliRouteEntry; readonly reason: string }[]
  /** Our entry when it exists already (it may still be Pending). */
  readonly keep: AliRouteEntry | undefined
  readonly create: boolean
  /** Custom entries left in the table after the deletes, before the create. */
  readonly customAfterDeletes: number
}

export function planAliRoutes(input: AliRoutePlanInput): AliRoutePlan {
  const subnet = formatCidr(input.subnet)
  const deletes: { entry: AliRouteEntry; reason: string }[] = []
  let keep: AliRouteEntry | undefined
  for (const entry of input.entries) {
    if (entry.type !== 'Custom') continue
    const ours = entry.instanceId === input.instanceId
    const dest = parseCidr(entry.destinationCidrBlock)
    const sameDest = dest !== undefined && formatCidr(dest) === subnet
    if (sameDest && ours && keep === undefined) keep = entry
    // Our lease owns this subnet now; an entry for it via another host is left from a previous owner.
    else if (sameDest) deletes.push({ entry, reason: ours ? 'duplicate entry' : `subnet now leased to this host, entry points at ${entry.instanceId || entry.nextHopType}` })
    // flannel keeps 0.0.0.0/0 and we never touch routes outside the flannel network.
    else if (ours && dest !== undefined && dest.prefix > 0 && netContainsNet(input.network, dest)) deletes.push({ entry, reason: 'stale entry of this instance' })
  }
  const custom = input.entries.filter((e) => e.type === 'Custom').length
  return { deletes, keep, create: keep === undefined, customAfterDeletes: custom - deletes.length }
}

/** The entry for `subnet` via `instanceId`, if the table has it. */
export function findEntry(entries: readonly AliRouteEntry[], subnet: IpNet, instanceId: string): AliRouteEntry | undefined {
  const want = formatCidr(subnet)
  return entries.find((e) => e.instanceId === instanceId && e.destinationCidrBlock === want)
}
