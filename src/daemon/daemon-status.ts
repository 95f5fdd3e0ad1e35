/**
 * What weftd tells `weft status` through GET /status on the healthz port: network, backend,
 * own lease, readiness, the last error logged and counters. Kept by weftd-main from the parts
 * it already sees (the parsed config, subnet.env's input, the logger), so the daemon needs no
 * extra hook; without --metrics-addr the counters are the log's error and warning counts.
 */
import type { Logger, LogFields } from '../log/logger.ts'
import type { NetworkConfig } from '../config/network-config.ts'
import type { Lease } from '../lease/lease.ts'
import type { LeaseRecorder, Outcome } from '../metrics/recorder.ts'
import { errorMessage } from '../errors.ts'
import { formatCidr, formatIp } from '../ip/ip.ts'

/** The JSON body of GET /status. */
export interface DaemonStatusReport {
  readonly version: string
  readonly pid: number
  readonly startedAt: string
  readonly ready: boolean
  readonly store: 'etcd' | 'kube'
  readonly network?: string
  readonly ipv6Network?: string
  readonly backend?: string
  readonly lease?: { readonly subnet?: string; readonly ipv6Subnet?: string; readonly publicIP?: string; readonly publicIPv6?: string; readonly expiresAt: string | null; readonly mtu?: number }
  readonly lastError?: { readonly time: string; readonly message: string }
  readonly counters: Readonly<Record<string, number>>
}

export class DaemonStatus implements LeaseRecorder {
  private config: NetworkConfig | undefined
  private lease: Lease | undefined
  private mtu: number | undefined
  private ready = false
  private lastError: { time: string; message: string } | undefined
  private errors = 0
  private warnings = 0
  private renewals = 0
  private renewalErrors = 0
  /** Also told of renewals (the metrics), when metrics are on. */
  alsoRecord: LeaseRecorder | undefined
  private readonly startedAt = new Date().toISOString()
  /** Counters from the metrics registry, when metrics are on. */
  counters: (() => Record<string, number>) | undefined

  constructor(private readonly version: string, private readonly store: 'etcd' | 'kube', private readonly now: () => number = Date.now) {}

  setConfig(config: NetworkConfig): void { this.config = config }
  setLease(lease: Lease, mtu?: number): void {
    this.lease = lease
    if (mtu !== undefined) this.mtu = mtu
  }
  setReady(): void { this.ready = true }

  leaseRenewal(result: Outcome): void {
    if (result === 'ok') this.renewals++
    else this.renewalErrors++
    this.alsoRecord?.leaseRenewal(result)
  }
  leaseExpiration(epochMs: number | undefined): void {
    if (this.lease) this.lease = { ...this.lease, ...(epochMs === undefined ? { expiration: undefined } : { expiration: epochMs }) }
    this.alsoRecord?.leaseExpiration(epochMs)
  }

  /** A logger that remembers the last error (and counts errors and warnings) for /status. */
  watch(logger: Logger): Logger {
    const note = (level: 'error' | 'warn', msg: string, fields: LogFields | undefined, err: unknown): void => {
      if (level === 'warn') return void this.warnings++
      this.errors++
      const detail = err === undefined ? '' : `: ${errorMessage(err)}`
      const context = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}` : ''
      this.lastError = { time: new Date(this.now()).toISOString(), message: `${msg}${detail}${context}` }
    }
    const wrap = (inner: Logger): Logger => ({
      error: (msg, fields, err) => { note('error', msg, fields, err); inner.error(msg, fields, err) },
      warn: (msg, fields, err) => { note('warn', msg, fields, err); inner.warn(msg, fields, err) },
      info: (msg, fields, err) => inner.info(msg, fields, err),
      debug: (msg, fields, err) => inner.debug(msg, fields, err),
      child: (fields) => wrap(inner.child(fields)),
    })
    return wrap(logger)
  }

  report(): DaemonStatusReport {
    const { config, lease } = this
    return {
      version: this.version,
      pid: process.pid,
      startedAt: this.startedAt,
      ready: this.ready,
      store: this.store,
      ...(config?.ipv4 ? { network: formatCidr(config.ipv4.network) } : {}),
      ...(config?.ipv6 ? { ipv6Network: formatCidr(config.ipv6.network) } : {}),
      ...(config ? { backend: config.backend.type } : {}),
      ...(lease ? {
        lease: {
          ...(lease.subnet ? { subnet: formatCidr(lease.subnet) } : {}),
          ...(lease.ipv6Subnet ? { ipv6Subnet: formatCidr(lease.ipv6Subnet) } : {}),
          ...(lease.attrs.publicIP ? { publicIP: formatIp(lease.attrs.publicIP) } : {}),
          ...(lease.attrs.publicIPv6 ? { publicIPv6: formatIp(lease.attrs.publicIPv6) } : {}),
          expiresAt: lease.expiration === undefined ? null : new Date(lease.expiration).toISOString(),
          ...(this.mtu === undefined ? {} : { mtu: this.mtu }),
        },
      } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
      counters: { logErrors: this.errors, logWarnings: this.warnings, leaseRenewals: this.renewals, leaseRenewalErrors: this.renewalErrors, ...this.counters?.() },
    }
  }
}
