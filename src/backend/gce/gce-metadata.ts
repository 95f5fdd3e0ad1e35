/**
 * Client for the GCE metadata server (`/computeMetadata/v1`, header `Metadata-Flavor: Google`).
 * It tells the backend where it runs and hands out the instance's OAuth token.
 */
import { WeftError, errorMessage } from '../../errors.ts'
import type { Clock } from '../../util/clock.ts'
import type { Logger } from '../../log/logger.ts'
import { withRetry, type RetryPolicy } from '../cloud/retry.ts'
import { isRetryableStatus, isTransientNetworkError } from '../cloud/cloud-error.ts'
import type { GceSelf } from './compute-routes-api.ts'

export const GCE_METADATA_DEFAULT = 'http://169.254.169.254'

/** Base URL from the option, else `GCE_METADATA_HOST` (host[:port], as Google's libraries read it). */
export function gceMetadataBase(option: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (option !== undefined) return option
  const host = env['GCE_METADATA_HOST']?.trim()
  if (host === undefined || host === '') return GCE_METADATA_DEFAULT
  return /^https?:\/\//.test(host) ? host.replace(/\/+$/, '') : `http://${host}`
}

export interface GceMetadataDeps {
  readonly clock: Clock
  readonly logger: Logger
  /** Per-request timeout; the metadata server is link-local and answers in milliseconds. */
  readonly timeoutMs?: number
  readonly retryPolicy?: RetryPolicy
}

/** An access token from the instance's default service account. */
export interface GceToken {
  readonly accessToken: string
  /** Epoch ms after which the token must not be used. */
  readonly expiresAt: number
}

/** What the backend and the SDK adapter need from the metadata server (a seam for unit tests). */
export interface GceMetadataSource {
  self(signal: AbortSignal): Promise<GceSelf>
  token(signal: AbortSignal): Promise<GceToken>
}

export class GceMetadata implements GceMetadataSource {
  constructor(readonly baseUrl: string, private readonly deps: GceMetadataDeps) {}

  /** Project, zone, network and instance name of this host. */
  async self(signal: AbortSignal): Promise<GceSelf> {
    const [project, zone, network, instance] = await Promise.all([
      this.get('project/project-id', signal),
      this.get('instance/zone', signal),
      this.get('instance/network-interfaces/0/network', signal),
      this.get('instance/name', signal),
    ])
    // zone and network come back as `projects/<number>/zones/<zone>`: keep the last segment.
    return { project, zone: basename(zone), network: basename(network), instance }
  }

  /** The default service account's token (what Google's client libraries use on GCE). */
  async token(signal: AbortSignal): Promise<GceToken> {
    const text = await this.get('instance/service-accounts/default/token', signal)
    const body = JSON.parse(text) as { access_token?: unknown; expires_in?: unknown }
    if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number') {
      throw new WeftError('CLOUD_CREDENTIALS', `gce metadata token reply has no access_token/expires_in at ${this.baseUrl}`)
    }
    return { accessToken: body.access_token, expiresAt: this.deps.clock.now() + body.expires_in * 1000 }
  }

  /** GET one metadata value as text; retries resets and 5xx a few times, then fails plainly. */
  async get(path: string, signal: AbortSignal): Promise<string> {
    const url = `${this.baseUrl}/computeMetadata/v1/${path}`
    const policy = this.deps.retryPolicy ?? { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 1_000 }
    return withRetry(() => this.fetchOnce(url, path, signal), { clock: this.deps.clock, logger: this.deps.logger }, {
      what: `metadata ${path}`,
      policy,
      signal,
      isRetryable: (err) => err instanceof MetadataHttpError ? isRetryableStatus(err.status) : !(err instanceof WeftError),
    }).catch((err: unknown) => {
      if (signal.aborted) throw signal.reason
      if (err instanceof WeftError) throw err
      if (err instanceof MetadataHttpError) {
        throw new WeftError('CLOUD_API_FAILED', `gce metadata ${path}: HTTP ${err.status} from ${this.baseUrl}`, { details: { path, status: err.status }, cause: err })
      }
      const reason = transientReason(err)
      throw new WeftError(
        'CLOUD_API_FAILED',
        `gce metadata server unreachable at ${this.baseUrl} (${reason}); the gce backend must run on a GCE instance, or set GCE_METADATA_HOST / Backend.MetadataEndpoint`,
        { details: { path, endpoint: this.baseUrl }, cause: err },
      )
    })
  }

  private async fetchOnce(url: string, path: string, signal: AbortSignal): Promise<string> {
    const timeout = AbortSignal.timeout(this.deps.timeoutMs ?? 3_000)
    const res = await fetch(url, { headers: { 'Metadata-Flavor': 'Google' }, signal: AbortSignal.any([signal, timeout]) })
    const text = await res.text()
    if (!res.ok) throw new MetadataHttpError(res.status)
    // A server that does not echo the flavor header is not a metadata server (captive proxy etc.).
    if (res.headers.get('metadata-flavor') !== 'Google') {
      throw new WeftError('CLOUD_API_FAILED', `gce metadata ${path}: reply from ${this.baseUrl} lacks Metadata-Flavor: Google; not a metadata server`)
    }
    return text.trim()
  }
}

class MetadataHttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`)
  }
}

function basename(value: string): string {
  return value.slice(value.lastIndexOf('/') + 1)
}

/** `connect ECONNREFUSED 127.0.0.1:1` from fetch's nested cause, or the timeout. */
function transientReason(err: unknown): string {
  if ((err as { name?: string }).name === 'TimeoutError') return 'timed out'
  const cause = (err as { cause?: unknown }).cause
  if (cause !== undefined && (isTransientNetworkError(cause) || cause instanceof Error)) return errorMessage(cause)
  return errorMessage(err)
}
