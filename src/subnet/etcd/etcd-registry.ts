/**
 * Registry on a real etcd (v3 API through its JSON gateway; flannel pkg/subnet/etcd/registry.go).
 * Lists are paginated at one revision; creation is a transaction on Version(key) == 0 with
 * a fresh TTL lease (revoked when the transaction loses); TTL lookups happen only in getSubnet.
 */
import { readFileSync } from 'node:fs'
import { WeftError } from '../../errors.ts'
import type { Logger } from '../../log/logger.ts'
import type { StoreRecorder } from '../../metrics/recorder.ts'
import { EtcdClient, type EtcdTlsOptions } from './etcd-client.ts'
import {
  type ListedSubnet, type Registry, type RegistryChange, type RegistryEntry, type RegistryWatchBatch, type SubnetListing, type SubnetRecord,
  configKey, subnetsPrefix,
} from './registry.ts'

export interface EtcdRegistryOptions {
  readonly endpoints: readonly string[]
  /** Paths of PEM files (flannel's --etcd-keyfile/--etcd-certfile/--etcd-cafile). */
  readonly keyFile?: string
  readonly certFile?: string
  readonly caFile?: string
  readonly username?: string
  readonly password?: string
  readonly timeoutMs?: number
  /** See EtcdClientOptions.watchIdleMs. */
  readonly watchIdleMs?: number
  /** Keys per range request while listing (default 500). */
  readonly pageSize?: number
  readonly logger: Logger
  readonly metrics?: StoreRecorder
}

interface Header { revision?: string }
interface Kv { key?: string; value?: string; lease?: string; mod_revision?: string }
interface WatchMessage {
  result?: {
    header?: Header
    created?: boolean
    canceled?: boolean
    compact_revision?: string
    cancel_reason?: string
    events?: Array<{ type?: 'PUT' | 'DELETE'; kv?: Kv }>
  }
  error?: { message?: string; grpc_code?: number; http_code?: number }
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64')
const unb64 = (s: string | undefined): string => (s === undefined ? '' : Buffer.from(s, 'base64').toString('utf8'))
const rangeEnd = (prefix: string): string => {
  const bytes = Buffer.from(prefix)
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) + 1
  return bytes.toString('base64')
}

export class EtcdRegistry implements Registry {
  private readonly client: EtcdClient
  private readonly pageSize: number
  private readonly streams = new AbortController()

  constructor(options: EtcdRegistryOptions) {
    const tls: EtcdTlsOptions = {
      ...(options.keyFile ? { key: readPem('etcd-keyfile', options.keyFile) } : {}),
      ...(options.certFile ? { cert: readPem('etcd-certfile', options.certFile) } : {}),
      ...(options.caFile ? { ca: readPem('etcd-cafile', options.caFile) } : {}),
    }
    if (Object.keys(tls).length > 0 && options.endpoints.every((e) => e.startsWith('http://'))) {
      options.logger.warn('etcd TLS files are set but every endpoint uses http://; TLS not used', { endpoints: options.endpoints.join(',') })
    }
    this.client = new EtcdClient({
      endpoints: options.endpoints, tls, logger: options.logger,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.watchIdleMs === undefined ? {} : { watchIdleMs: options.watchIdleMs }),
      ...(options.username === undefined ? {} : { username: options.username, password: options.password ?? '' }),
    })
    this.pageSize = options.pageSize ?? 500
  }

  async getConfig(prefix: string, signal: AbortSignal): Promise<string | undefined> {
    const res = await this.client.call<{ kvs?: Kv[] }>('/v3/kv/range', { key: b64(configKey(prefix)) }, signal)
    const kv = res.kvs?.[0]
    return kv ? unb64(kv.value) : undefined
  }

  async putConfig(prefix: string, json: string, signal: AbortSignal): Promise<void> {
    await this.client.call('/v3/kv/put', { key: b64(configKey(prefix)), value: b64(json) }, signal)
  }

  async listSubnets(prefix: string, signal: AbortSignal): Promise<SubnetListing> {
    const base = subnetsPrefix(prefix)
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.listOnce(base, signal)
      } catch (err) {
        // The snapshot revision got compacted between two pages: start over at a new one.
        if (attempt < 3 && err instanceof WeftError && err.code === 'REGISTRY_COMPACTED') continue
        throw err
      }
    }
  }

  private async listOnce(base: string, signal: AbortSignal): Promise<SubnetListing> {
    const entries: RegistryEntry[] = []
    const end = rangeEnd(base)
    let key: Buffer = Buffer.from(base)
    let revision: string | undefined
    for (;;) {
      const body = { key: key.toString('base64'), range_end: end, limit: String(this.pageSize), ...(revision ? { revision } : {}) }
      const res = await this.client.call<{ header?: Header; kvs?: Kv[]; more?: boolean }>('/v3/kv/range', body, signal)
      revision ??= res.header?.revision ?? '0'
      const kvs = res.kvs ?? []
      for (const kv of kvs) entries.push(toEntry(base, kv))
      const last = kvs[kvs.length - 1]
      if (!res.more || !last?.key) return { entries, revision }
      key = Buffer.concat([Buffer.from(last.key, 'base64'), Buffer.from([0])])
    }
  }

  async getSubnet(prefix: string, key: string, signal: AbortSignal): Promise<SubnetRecord | undefined> {
    const base = subnetsPrefix(prefix)
    const res = await this.client.call<{ header?: Header; kvs?: Kv[] }>('/v3/kv/range', { key: b64(base + key) }, signal)
    const kv = res.kvs?.[0]
    if (!kv) return undefined
    const entry = toEntry(base, kv)
    const storeRevision = res.header?.revision ?? '0'
    if (entry.leaseId === '0') return { ...entry, storeRevision }
    const ttl = await this.client.call<{ TTL?: string }>('/v3/lease/timetolive', { ID: entry.leaseId }, signal)
    // TTL -1: the lease is gone and the key about to be: report it as expiring now.
    return { ...entry, ttlSeconds: Math.max(0, Number(ttl.TTL ?? 0)), storeRevision }
  }

  async createSubnet(prefix: string, key: string, value: string, ttlSeconds: number, signal: AbortSignal, grantedLeaseId?: string): Promise<SubnetRecord> {
    const leaseId = ttlSeconds > 0 ? grantedLeaseId ?? (await this.grant(ttlSeconds, signal)) : '0'
    return this.putIf(prefix, key, value, leaseId, ttlSeconds, { target: 'VERSION', result: 'EQUAL', version: '0' }, `subnet already exists: ${key}`, signal)
  }

  async updateSubnet(prefix: string, key: string, value: string, ttlSeconds: number, signal: AbortSignal, listed?: ListedSubnet): Promise<SubnetRecord> {
    const unchanged = listed && (await this.updateIfUnchanged(prefix, key, value, ttlSeconds, listed, signal))
    if (unchanged) return unchanged
    const full = subnetsPrefix(prefix) + key
    const current = await this.client.call<{ kvs?: Kv[] }>('/v3/kv/range', { key: b64(full), keys_only: true }, signal)
    const existing = current.kvs?.[0]
    const oldLease = existing?.lease ?? '0'
    // A key that exists without a lease is an operator's reservation: keep it TTL-less.
    const isReservation = existing !== undefined && oldLease === '0'
    const leaseId = isReservation ? '0' : await this.grant(ttlSeconds, signal)
    const put = await this.client.call<{ header?: Header }>('/v3/kv/put', {
      key: b64(full), value: b64(value), ...(leaseId === '0' ? {} : { lease: leaseId }),
    }, signal)
    // The old lease now holds no key; drop it instead of letting it linger for a day.
    if (oldLease !== '0' && oldLease !== leaseId) await this.revokeQuietly(oldLease)
    return writtenRecord(key, value, leaseId, put.header, ttlSeconds)
  }

  /** One transaction instead of range, grant, put and revoke in turn (a restart's reuse). */
  private async updateIfUnchanged(prefix: string, key: string, value: string, ttlSeconds: number, listed: ListedSubnet, signal: AbortSignal): Promise<SubnetRecord | undefined> {
    const oldLease = listed.entry.leaseId
    const leaseId = oldLease === '0' ? '0' : listed.grantedLeaseId
    if (leaseId === undefined) return undefined
    const full = b64(subnetsPrefix(prefix) + key)
    const res = await this.client.call<{ header?: Header; succeeded?: boolean }>('/v3/kv/txn', {
      compare: [{ target: 'MOD', key: full, result: 'EQUAL', mod_revision: listed.entry.modRevision }],
      success: [{ request_put: { key: full, value: b64(value), ...(leaseId === '0' ? {} : { lease: leaseId }) } }],
    }, signal)
    if (!res.succeeded) return undefined
    // The old lease now holds no key; it goes in the background, off the start-up path.
    if (oldLease !== '0' && oldLease !== leaseId) void this.revokeQuietly(oldLease)
    return writtenRecord(key, value, leaseId, res.header, ttlSeconds)
  }

  async replaceSubnet(prefix: string, key: string, value: string, ttlSeconds: number, expectedModRevision: string | undefined, signal: AbortSignal): Promise<SubnetRecord> {
    if (expectedModRevision === undefined) return this.createSubnet(prefix, key, value, ttlSeconds, signal)
    const leaseId = ttlSeconds > 0 ? await this.grant(ttlSeconds, signal) : '0'
    return this.putIf(prefix, key, value, leaseId, ttlSeconds, { target: 'MOD', result: 'EQUAL', mod_revision: expectedModRevision }, `subnet ${key} changed again meanwhile`, signal)
  }

  /** A put under one compare, in a transaction; the granted lease is revoked when it fails. */
  private async putIf(prefix: string, key: string, value: string, leaseId: string, ttlSeconds: number, condition: Record<string, string>, conflict: string, signal: AbortSignal): Promise<SubnetRecord> {
    const full = b64(subnetsPrefix(prefix) + key)
    let res: { header?: Header; succeeded?: boolean }
    try {
      res = await this.client.call('/v3/kv/txn', {
        compare: [{ ...condition, key: full }],
        success: [{ request_put: { key: full, value: b64(value), ...(leaseId === '0' ? {} : { lease: leaseId }) } }],
      }, signal)
    } catch (err) {
      await this.revokeQuietly(leaseId)
      throw err
    }
    if (!res.succeeded) {
      await this.revokeQuietly(leaseId)
      throw new WeftError('LEASE_CONFLICT', conflict, { details: { key } })
    }
    return writtenRecord(key, value, leaseId, res.header, ttlSeconds)
  }


  async deleteSubnet(prefix: string, key: string, signal: AbortSignal): Promise<void> {
    await this.client.call('/v3/kv/deleterange', { key: b64(subnetsPrefix(prefix) + key) }, signal)
  }

  watchSubnets(prefix: string, fromRevision: string, signal: AbortSignal): AsyncIterable<RegistryWatchBatch> {
    const base = subnetsPrefix(prefix)
    return this.watch(base, { key: b64(base), range_end: rangeEnd(base) }, fromRevision, signal)
  }

  watchSubnet(prefix: string, key: string, fromRevision: string, signal: AbortSignal): AsyncIterable<RegistryWatchBatch> {
    const base = subnetsPrefix(prefix)
    return this.watch(base, { key: b64(base + key) }, fromRevision, signal)
  }

  async close(): Promise<void> {
    this.streams.abort(new Error('registry closed'))
    this.client.close()
  }

  private async *watch(base: string, range: Record<string, string>, from: string, outer: AbortSignal): AsyncGenerator<RegistryWatchBatch> {
    const signal = AbortSignal.any([outer, this.streams.signal])
    const body = { create_request: { ...range, start_revision: from, progress_notify: true } }
    for await (const raw of this.client.stream('/v3/watch', body, signal)) {
      const msg = raw as WatchMessage
      if (msg.error) throw new WeftError('REGISTRY_UNAVAILABLE', `etcd watch failed: ${msg.error.message ?? 'unknown error'}`)
      const result = msg.result
      if (!result) continue
      if (result.canceled) {
        if (result.compact_revision && result.compact_revision !== '0') {
          throw new WeftError('REGISTRY_COMPACTED', `required revision ${from} has been compacted`, { details: { compactRevision: result.compact_revision } })
        }
        throw new WeftError('REGISTRY_UNAVAILABLE', `etcd canceled the watch: ${result.cancel_reason ?? 'no reason given'}`)
      }
      if (result.created) continue
      const changes: RegistryChange[] = (result.events ?? []).map((e) => {
        const kv = e.kv ?? {}
        const k = unb64(kv.key).slice(base.length)
        const mod = kv.mod_revision ?? '0'
        return e.type === 'DELETE'
          ? { type: 'delete', key: k, modRevision: mod }
          : { type: 'put', key: k, value: unb64(kv.value), leaseId: kv.lease ?? '0', modRevision: mod }
      })
      yield { revision: result.header?.revision ?? from, changes }
    }
  }

  grantLease(ttlSeconds: number, signal: AbortSignal): Promise<string> {
    return this.grant(ttlSeconds, signal)
  }

  releaseLease(leaseId: string): Promise<void> {
    return this.revokeQuietly(leaseId)
  }

  private async grant(ttlSeconds: number, signal: AbortSignal): Promise<string> {
    const res = await this.client.call<{ ID?: string; error?: string }>('/v3/lease/grant', { TTL: String(ttlSeconds) }, signal)
    if (!res.ID) throw new WeftError('REGISTRY_UNAVAILABLE', `etcd lease grant failed: ${res.error ?? 'no lease id'}`)
    return res.ID
  }

  private async revokeQuietly(leaseId: string): Promise<void> {
    if (leaseId === '0') return
    try {
      await this.client.call('/v3/lease/revoke', { ID: leaseId }, AbortSignal.timeout(5000))
    } catch {
      // It expires on its own; nothing else holds it.
    }
  }
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new WeftError('USAGE', `${flag}: cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
}

function toEntry(base: string, kv: Kv): RegistryEntry {
  return { key: unb64(kv.key).slice(base.length), value: unb64(kv.value), leaseId: kv.lease ?? '0', modRevision: kv.mod_revision ?? '0' }
}

/** The record of a key just written: a reservation (lease 0) has no TTL. */
function writtenRecord(key: string, value: string, leaseId: string, header: Header | undefined, ttlSeconds: number): SubnetRecord {
  const revision = header?.revision ?? '0'
  return { key, value, leaseId, modRevision: revision, storeRevision: revision, ...(leaseId === '0' ? {} : { ttlSeconds }) }
}
