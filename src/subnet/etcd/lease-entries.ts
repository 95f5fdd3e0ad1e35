/**
 * Registry entries <-> leases, with garbage (keys that are not subnets, values that are not
 * lease JSON) reported to a callback instead of thrown: a stray key must never stop a watch.
 */
import { isWeftError, errorMessage } from '../../errors.ts'
import type { Lease, LeaseEvent } from '../../lease/lease.ts'
import { decodeLeaseAttrs } from '../../lease/lease-codec.ts'
import { parseSubnetKey, type SubnetKeyParts } from '../../lease/subnet-key.ts'
import type { Logger } from '../../log/logger.ts'
import type { RegistryChange, RegistryEntry } from './registry.ts'

/** Logs each bad key once (per value revision), so a stray key costs one warning, not one per resync. */
export class GarbageReporter {
  private readonly seen = new Set<string>()
  constructor(private readonly logger: Logger) {}

  report(key: string, modRevision: string, reason: string): void {
    const id = `${key}@${modRevision}`
    if (this.seen.has(id)) return
    // Bounded: a flood of garbage must not grow memory without limit.
    if (this.seen.size > 10_000) this.seen.clear()
    this.seen.add(id)
    this.logger.warn('skipping malformed subnet key', { key, reason })
  }
}

export interface ParsedEntry {
  readonly parts: SubnetKeyParts
  /** Undefined when the value is garbage: the subnet is still taken, but it is nobody's lease. */
  readonly lease?: Lease
}

/** Parses one stored key; undefined when the key does not name a subnet. */
export function parseEntry(entry: RegistryEntry, garbage: GarbageReporter, expiration?: number): ParsedEntry | undefined {
  const parts = parseSubnetKey(entry.key)
  if (!parts) {
    garbage.report(entry.key, entry.modRevision, 'not a subnet key')
    return undefined
  }
  try {
    const attrs = decodeLeaseAttrs(entry.value)
    const lease: Lease = {
      subnet: parts.subnet,
      ...(parts.ipv6Subnet ? { ipv6Subnet: parts.ipv6Subnet } : {}),
      attrs,
      ...(expiration === undefined ? {} : { expiration }),
      revision: entry.modRevision,
    }
    return { parts, lease }
  } catch (err) {
    if (!isWeftError(err, 'LEASE_INVALID')) throw err
    garbage.report(entry.key, entry.modRevision, errorMessage(err))
    return { parts }
  }
}

/**
 * A watch change as a lease event. A delete carries only the key: the lease watcher
 * substitutes the stored copy. Undefined for garbage.
 */
export function changeToEvent(change: RegistryChange, garbage: GarbageReporter): LeaseEvent | undefined {
  if (change.type === 'put') {
    const parsed = parseEntry({ key: change.key, value: change.value ?? '', leaseId: change.leaseId ?? '0', modRevision: change.modRevision }, garbage)
    return parsed?.lease ? { type: 'added', lease: parsed.lease } : undefined
  }
  const parts = parseSubnetKey(change.key)
  if (!parts) return undefined
  return {
    type: 'removed',
    lease: { subnet: parts.subnet, ...(parts.ipv6Subnet ? { ipv6Subnet: parts.ipv6Subnet } : {}), attrs: { backendType: '' }, revision: change.modRevision },
  }
}
