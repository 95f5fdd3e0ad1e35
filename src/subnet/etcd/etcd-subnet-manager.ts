/**
 * SubnetManager over a Registry (flannel pkg/subnet/etcd/local_manager.go): acquire by reuse
 * (same public IP), previous subnet, or random free subnet; create with a TTL lease; renew;
 * and the lease watches. Improvements over flannel: a lost creation race is retried, a
 * reservation stays a reservation, and watches never do a TTL lookup per key.
 */
import { WeftError, isWeftError } from '../../errors.ts'
import { type IpNet, formatCidr, formatIp, ipEqual, netOverlaps } from '../../ip/ip.ts'
import type { Lease, LeaseAttrs, LeaseWatchResult } from '../../lease/lease.ts'
import { decodeLeaseAttrs, encodeLeaseAttrs } from '../../lease/lease-codec.ts'
import { formatSubnetKey } from '../../lease/subnet-key.ts'
import { type RandomFn, allocateSubnet, isSubnetCompatible } from '../../lease/subnet-allocator.ts'
import type { Logger } from '../../log/logger.ts'
import type { Clock } from '../../util/clock.ts'
import type { FamilyConfig, NetworkConfig } from '../../config/network-config.ts'
import type { ReclaimedLease, SubnetManager } from '../subnet-manager.ts'
import type { Registry, SubnetListing, SubnetRecord } from './registry.ts'
import { GarbageReporter, type ParsedEntry, parseEntry } from './lease-entries.ts'
import type { StoreRecorder } from '../../metrics/recorder.ts'
import { type WatchDeps, watchAllLeases, watchOwnLease } from './lease-watches.ts'

/** flannel's subnetTTL: 24 h. */
export const SUBNET_TTL_SECONDS = 86_400
/** Attempts before a lost creation race is reported (flannel's raceRetries). */
export const RACE_RETRIES = 10

/** A prefetched listing older than this is listed again (a config that appeared late, say). */
const EARLY_MAX_AGE_MS = 2000

interface EarlyRequests {
  readonly at: number
  config?: Promise<string | undefined>
  listing?: Promise<SubnetListing | undefined>
  grant?: Promise<string | undefined>
}

export interface EtcdSubnetManagerOptions {
  readonly registry: Registry
  /** etcd prefix, e.g. `/coreos.com/network`. */
  readonly prefix: string
  readonly logger: Logger
  readonly clock: Clock
  /** Parses and validates `<prefix>/config` (throws ConfigError). */
  readonly parseConfig: (json: string) => NetworkConfig
  /** FLANNEL_SUBNET / FLANNEL_IPV6_SUBNET from the previous subnet.env. */
  readonly previousSubnet?: { readonly ipv4?: IpNet; readonly ipv6?: IpNet }
  readonly random?: RandomFn
  /** TTL of the etcd lease behind our key; default 24 h. */
  readonly ttlSeconds?: number
  /** Counts watch restarts (weft_store_watch_restarts_total); absent when metrics are off. */
  readonly metrics?: StoreRecorder
}

export class EtcdSubnetManager implements SubnetManager {
  readonly name = 'etcd'
  private readonly registry: Registry
  private readonly prefix: string
  private readonly logger: Logger
  private readonly clock: Clock
  private readonly ttl: number
  private readonly garbage: GarbageReporter

  constructor(private readonly options: EtcdSubnetManagerOptions) {
    this.registry = options.registry
    this.prefix = options.prefix
    this.logger = options.logger.child({ component: 'subnet/etcd' })
    this.clock = options.clock
    this.ttl = options.ttlSeconds ?? SUBNET_TTL_SECONDS
    this.garbage = new GarbageReporter(this.logger)
  }

  /**
   * Starts start-up's first store round trips (config, listing, TTL grant) at once, before the
   * kernel and the backend are ready: they need only the prefix. getNetworkConfig and the first
   * acquisition consume them; a listing older than EARLY_MAX_AGE_MS is not used, and a stale one
   * is safe anyway (creation is conditional on the key being absent, and a conflict re-lists).
   */
  prefetch(signal: AbortSignal): void {
    if (this.early) return
    const config = this.registry.getConfig(this.prefix, signal)
    config.catch(() => {}) // getNetworkConfig reports it, and the daemon retries
    // A failed early listing or grant is simply made again by the acquisition.
    const orUndefined = <T>(p: Promise<T>): Promise<T | undefined> => p.catch(() => undefined)
    this.early = {
      at: this.clock.now(),
      config,
      listing: orUndefined(this.registry.listSubnets(this.prefix, signal)),
      grant: orUndefined(this.registry.grantLease(this.ttl, signal)),
    }
  }

  async getNetworkConfig(signal: AbortSignal): Promise<NetworkConfig> {
    const early = this.early?.config
    if (this.early) this.early.config = undefined
    const json = await (early ?? this.registry.getConfig(this.prefix, signal))
    if (json === undefined) {
      // flannel's wording, which operators search for.
      throw new WeftError('CONFIG_NOT_FOUND', 'flannel config not found in etcd store. Did you create your config using etcdv3 API?', {
        details: { key: `${this.prefix}/config` },
      })
    }
    return this.options.parseConfig(json)
  }

  async acquireLease(config: NetworkConfig, attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
    const v4 = config.ipv4
    if (!config.enableIPv4 || !v4) {
      throw new WeftError('CONFIG_INVALID', 'EnableIPv4: the etcd subnet manager needs an IPv4 network')
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.tryAcquire(config, v4, attrs, signal)
      } catch (err) {
        if (!isWeftError(err, 'LEASE_CONFLICT')) throw err
        if (attempt >= RACE_RETRIES) {
          throw new WeftError('LEASE_CONFLICT', `failed to acquire lease: lost the creation race ${attempt} times`, { cause: err })
        }
        // Another host created the key between our listing and our transaction: list again.
        this.logger.info('subnet taken by another host meanwhile; retrying', { attempt }, err)
      }
    }
  }

  async renewLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    if (!lease.subnet) throw new WeftError('INVALID_INPUT', 'lease subnet: required by the etcd subnet manager')
    const key = formatSubnetKey(lease.subnet, lease.ipv6Subnet)
    const record = await this.registry.updateSubnet(this.prefix, key, encodeLeaseAttrs(lease.attrs), this.ttl, signal)
    return this.withRecord(lease, record)
  }

  /**
   * Our key back as we wrote it: re-created when absent, rewritten (conditional on the revision
   * just read) when another writer put something else (left alone with `onlyIfAbsent`). A
   * reservation (no expiration) stays one.
   */
  async reclaimLease(lease: Lease, signal: AbortSignal, options: { readonly onlyIfAbsent?: boolean } = {}): Promise<ReclaimedLease> {
    if (!lease.subnet) throw new WeftError('INVALID_INPUT', 'lease subnet: required by the etcd subnet manager')
    const key = formatSubnetKey(lease.subnet, lease.ipv6Subnet)
    const value = encodeLeaseAttrs(lease.attrs)
    const ttl = lease.expiration === undefined ? 0 : this.ttl
    for (let attempt = 1; ; attempt++) {
      const record = await this.registry.getSubnet(this.prefix, key, signal)
      if (record?.value === value) return { lease: this.withRecord(lease, record), found: 'ours' }
      if (record && options.onlyIfAbsent) return { lease, found: 'other', otherPublicIP: storedPublicIP(record.value) }
      try {
        const written = await this.registry.replaceSubnet(this.prefix, key, value, ttl, record?.modRevision, signal)
        if (!record) return { lease: this.withRecord(lease, written), found: 'absent' }
        return { lease: this.withRecord(lease, written), found: 'other', otherPublicIP: storedPublicIP(record.value) }
      } catch (err) {
        // The key moved between our read and our write: read it again, a few times.
        if (!isWeftError(err, 'LEASE_CONFLICT') || attempt >= RACE_RETRIES) throw err
      }
    }
  }

  watchLeases(own: Lease | undefined, signal: AbortSignal): AsyncIterable<LeaseWatchResult> {
    return watchAllLeases(this.watchDeps(), own, signal)
  }

  watchLease(own: Lease, signal: AbortSignal): AsyncIterable<LeaseWatchResult> {
    if (!own.subnet) throw new WeftError('INVALID_INPUT', 'lease subnet: required by the etcd subnet manager')
    return watchOwnLease(this.watchDeps(), formatSubnetKey(own.subnet, own.ipv6Subnet), own, signal)
  }

  /**
   * Every valid lease (for the CLI table). With `withExpiration`, one TTL lookup per lease:
   * fine for an operator's command, never used by the watch.
   */
  async listLeases(signal: AbortSignal, options: { withExpiration?: boolean } = {}): Promise<Lease[]> {
    // During start-up (vxlan looking for its previous VTEP MAC) the prefetched listing serves.
    const early = options.withExpiration ? undefined : await this.freshEarly()?.listing
    const listing = early ?? (await this.registry.listSubnets(this.prefix, signal))
    const out: Lease[] = []
    for (const entry of listing.entries) {
      let lease = parseEntry(entry, this.garbage)?.lease
      if (!lease) continue
      if (options.withExpiration && entry.leaseId !== '0') {
        const record = await this.registry.getSubnet(this.prefix, entry.key, signal)
        if (!record) continue // expired meanwhile
        if (record.ttlSeconds !== undefined) lease = { ...lease, expiration: this.clock.now() + record.ttlSeconds * 1000 }
      }
      out.push(lease)
    }
    return out
  }

  async close(): Promise<void> {
    const grant = this.early?.grant
    this.early = undefined
    await this.releaseEarlyGrant(grant)
    await this.registry.close()
  }

  private watchDeps(): WatchDeps {
    return { registry: this.registry, prefix: this.prefix, logger: this.logger, clock: this.clock, garbage: this.garbage, ...(this.options.metrics ? { metrics: this.options.metrics } : {}) }
  }

  /** The prefetched listing and grant, once, if still fresh; a stale grant is released. */
  private takeEarly(): { listing: Promise<SubnetListing | undefined>; grant: Promise<string | undefined> } | undefined {
    const early = this.early
    if (!early?.listing || !early.grant) return undefined
    const fresh = this.freshEarly() !== undefined
    this.early = { ...early, listing: undefined, grant: undefined }
    if (fresh) return { listing: early.listing, grant: early.grant }
    void this.releaseEarlyGrant(early.grant)
    return undefined
  }

  /** The prefetched requests while they are recent enough to stand for the store's state. */
  private freshEarly(): EarlyRequests | undefined {
    return this.early && this.clock.now() - this.early.at <= EARLY_MAX_AGE_MS ? this.early : undefined
  }

  private async releaseEarlyGrant(grant: Promise<string | undefined> | undefined): Promise<void> {
    const id = await grant
    if (id !== undefined) await this.registry.releaseLease(id)
  }

  private async tryAcquire(config: NetworkConfig, v4: FamilyConfig, attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
    // The grant is a store write like the creation: start it now, alongside the listing, so a
    // new host waits for one write less. Unused (reuse, or a failed listing) it is revoked.
    const early = this.takeEarly()
    const granting = early
      ? early.grant.then((id) => id ?? this.registry.grantLease(this.ttl, signal))
      : this.registry.grantLease(this.ttl, signal)
    let grantedId: string | undefined
    let listing: SubnetListing
    try {
      listing = (await early?.listing) ?? (await this.registry.listSubnets(this.prefix, signal))
      grantedId = await granting
    } catch (err) {
      void granting.then((id) => this.registry.releaseLease(id), () => {})
      throw err
    }
    try {
      return await this.acquireFrom(listing, config, v4, attrs, grantedId, signal)
    } finally {
      // createSubnet consumes the grant (and revokes it itself when it loses); anything else leaves it unused.
      if (grantedId !== undefined && !this.consumed.delete(grantedId)) void this.registry.releaseLease(grantedId)
    }
  }

  /** Grants handed to createSubnet, which owns them from then on. */
  private readonly consumed = new Set<string>()
  private early: EarlyRequests | undefined

  private async acquireFrom(
    listing: SubnetListing, config: NetworkConfig, v4: FamilyConfig, attrs: LeaseAttrs, grantedId: string, signal: AbortSignal,
  ): Promise<Lease> {
    const entries = listing.entries.map((e) => parseEntry(e, this.garbage)).filter((e): e is ParsedEntry => e !== undefined)
    const value = encodeLeaseAttrs(attrs)

    const mine = entries.find((e) => e.lease && isOwnedBy(e.lease, attrs))
    if (mine?.lease) {
      const key = formatSubnetKey(mine.parts.subnet, mine.parts.ipv6Subnet)
      if (this.isCompatible(config, mine.parts.subnet, mine.parts.ipv6Subnet)) {
        this.logger.info('found lease for current public IP, reusing', { ...this.describe(mine.lease), publicIP: publicIPText(attrs) })
        // One conditional write with the grant we already hold, while the key is as listed.
        const entry = listing.entries.find((e) => e.key === key)
        const record = await this.registry.updateSubnet(this.prefix, key, value, this.ttl, signal, entry && { entry, grantedLeaseId: grantedId })
        if (record.leaseId === grantedId) this.consumed.add(grantedId)
        return this.withRecord({ ...mine.lease, attrs }, record)
      }
      this.logger.info('found incompatible lease for current public IP, deleting', { key })
      await this.registry.deleteSubnet(this.prefix, key, signal)
      entries.splice(entries.indexOf(mine), 1)
    }

    const takenV4 = entries.map((e) => e.parts.subnet)
    const takenV6 = entries.flatMap((e) => (e.parts.ipv6Subnet ? [e.parts.ipv6Subnet] : []))
    const subnet = this.pick('ipv4', v4, takenV4)
    let ipv6Subnet: IpNet | undefined
    if (config.enableIPv6 && config.ipv6) ipv6Subnet = this.pick('ipv6', config.ipv6, takenV6)

    const key = formatSubnetKey(subnet, ipv6Subnet)
    this.consumed.add(grantedId)
    const record = await this.registry.createSubnet(this.prefix, key, value, this.ttl, signal, grantedId)
    const lease = this.withRecord({ subnet, ...(ipv6Subnet ? { ipv6Subnet } : {}), attrs }, record)
    this.logger.info('allocated lease to current node', { ...this.describe(lease), publicIP: publicIPText(attrs) })
    return lease
  }

  /** The previous subnet when it is still allowed and free, else a random free one. */
  private pick(family: 'ipv4' | 'ipv6', config: FamilyConfig, taken: readonly IpNet[]): IpNet {
    const previous = this.options.previousSubnet?.[family]
    if (previous) {
      if (!isSubnetCompatible(config, previous)) {
        this.logger.info('previous subnet is outside the configured range; ignoring', { subnet: formatCidr(previous) })
      } else if (taken.some((t) => netOverlaps(t, previous))) {
        this.logger.info('previous subnet is taken by another host; ignoring', { subnet: formatCidr(previous) })
      } else {
        this.logger.info('reusing previous subnet', { subnet: formatCidr(previous) })
        return previous
      }
    }
    this.logger.info('picking subnet in range', { from: formatIp(config.subnetMin), to: formatIp(config.subnetMax) })
    return allocateSubnet(config, taken, this.options.random)
  }

  private isCompatible(config: NetworkConfig, subnet: IpNet, ipv6Subnet: IpNet | undefined): boolean {
    if (!config.ipv4 || !isSubnetCompatible(config.ipv4, subnet)) return false
    if (!config.enableIPv6 || !config.ipv6) return ipv6Subnet === undefined
    return ipv6Subnet !== undefined && isSubnetCompatible(config.ipv6, ipv6Subnet)
  }

  private withRecord(lease: Lease, record: SubnetRecord): Lease {
    const { expiration: _old, ...rest } = lease
    return {
      ...rest,
      ...(record.ttlSeconds === undefined ? {} : { expiration: this.clock.now() + record.ttlSeconds * 1000 }),
      revision: record.modRevision,
    }
  }

  private describe(lease: Lease): Record<string, string> {
    return {
      subnet: lease.subnet ? formatCidr(lease.subnet) : '',
      ...(lease.ipv6Subnet ? { ipv6Subnet: formatCidr(lease.ipv6Subnet) } : {}),
    }
  }
}

/** flannel matches our old lease by the IPv4 public address (IPv6 when we have none). */
function isOwnedBy(lease: Lease, attrs: LeaseAttrs): boolean {
  if (attrs.publicIP) return ipEqual(lease.attrs.publicIP, attrs.publicIP)
  return attrs.publicIPv6 !== undefined && ipEqual(lease.attrs.publicIPv6, attrs.publicIPv6)
}

/** The PublicIP a stored value names, for the log; never the whole value. */
function storedPublicIP(value: string): string {
  try {
    return publicIPText(decodeLeaseAttrs(value)) || 'none'
  } catch {
    return 'not a lease'
  }
}

function publicIPText(attrs: LeaseAttrs): string {
  const ip = attrs.publicIP ?? attrs.publicIPv6
  return ip ? formatIp(ip) : ''
}
