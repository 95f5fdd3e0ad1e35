/**
 * One error hierarchy with stable codes (undici's `UND_ERR_*` idea). Callers branch on
 * `isWeftError(err, code)`, never on message text.
 */
export type ErrorCode =
  /** A flag, environment variable or option is malformed (exit code 2). */
  | 'USAGE'
  /** The network config JSON or a backend section breaks a rule. */
  | 'CONFIG_INVALID'
  /** The network config is not in the store yet. */
  | 'CONFIG_NOT_FOUND'
  /** Backend.Type names no known backend. */
  | 'BACKEND_UNKNOWN'
  /** The backend cannot run here (NAT for host-gw, architecture, ...). */
  | 'BACKEND_UNSUPPORTED'
  /** The backend type of the network changed while leases of the old one exist. */
  | 'BACKEND_CHANGED'
  /** No free subnet in [SubnetMin, SubnetMax]. */
  | 'LEASE_NO_FREE_SUBNET'
  /** Lost a creation race or a compare-and-swap on a lease key. */
  | 'LEASE_CONFLICT'
  /** Our own lease was deleted or expired. */
  | 'LEASE_REVOKED'
  /** A lease read from the store is malformed. */
  | 'LEASE_INVALID'
  /** The store (etcd, kube API) cannot be reached or answered an error. */
  | 'REGISTRY_UNAVAILABLE'
  /** The store answered, but the revision we watched from was compacted. */
  | 'REGISTRY_COMPACTED'
  /** The store refused our credentials or permissions (HTTP 401/403): retrying will not help. */
  | 'REGISTRY_DENIED'
  /** The store has no such object (HTTP 404). */
  | 'REGISTRY_NOT_FOUND'
  /** No external interface matched the selection flags. */
  | 'IFACE_NOT_FOUND'
  /** A kernel (netlink, sysctl, TUN) operation failed. */
  | 'KERNEL_OP_FAILED'
  /** A firewall (iptables/nftables) operation failed. */
  | 'FIREWALL_OP_FAILED'
  /** A cloud API call failed. */
  | 'CLOUD_API_FAILED'
  /** A cloud route table is full (per-table/project route limit). */
  | 'CLOUD_ROUTE_LIMIT'
  /** Credentials are missing. */
  | 'CLOUD_CREDENTIALS'
  /** Malformed input that is not one of the above (decoder, packet). */
  | 'INVALID_INPUT'

export type ErrorDetails = Readonly<Record<string, string | number | boolean | undefined>>

const BRAND = Symbol.for('weft.error')

export class WeftError extends Error {
  readonly code: ErrorCode
  readonly details: ErrorDetails
  readonly [BRAND] = true

  constructor(code: ErrorCode, message: string, options: { details?: ErrorDetails; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'WeftError'
    this.code = code
    this.details = options.details ?? {}
  }
}

/** A config or option error: the message names the field and the rule. */
export class ConfigError extends WeftError {
  readonly field: string
  constructor(field: string, rule: string, options: { code?: ErrorCode; details?: ErrorDetails; cause?: unknown } = {}) {
    super(options.code ?? 'CONFIG_INVALID', field === '' ? rule : `${field}: ${rule}`, options)
    this.name = 'ConfigError'
    this.field = field
  }
}

export function isWeftError(err: unknown, code?: ErrorCode): err is WeftError {
  if (typeof err !== 'object' || err === null || (err as Record<symbol, unknown>)[BRAND] !== true) return false
  return code === undefined || (err as WeftError).code === code
}

/** Message of any thrown value, for one-line reports. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
