/**
 * EC2 instance metadata (IMDS) client: IMDSv2 session tokens, falling back to IMDSv1 when the
 * token endpoint is absent or refuses (as the AWS SDKs do). Only the two facts aws-vpc needs.
 *
 * Endpoint: `AWS_EC2_METADATA_SERVICE_ENDPOINT` (the SDKs' own variable), else
 * `http://[fd00:ec2::254]` when `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`, else
 * `http://169.254.169.254`.
 */
import { WeftError } from '../../errors.ts'
import type { Logger } from '../../log/logger.ts'
import type { Clock } from '../../util/clock.ts'
import { CloudError, isRetryableStatus } from '../cloud/cloud-error.ts'
import { withRetry } from '../cloud/retry.ts'
import type { RetryPolicy } from '../cloud/retry.ts'

export interface InstanceIdentity {
  readonly region: string
  readonly instanceId: string
}

/** What aws-vpc reads from the metadata service. */
export interface Imds {
  identity(signal: AbortSignal): Promise<InstanceIdentity>
}

export interface ImdsOptions {
  readonly endpoint?: string
  readonly logger: Logger
  readonly clock: Clock
  readonly retryPolicy?: RetryPolicy
  /** Per-request timeout (the SDKs use 1 s). */
  readonly timeoutMs?: number
}

const TOKEN_TTL_S = 21_600

/** Resolves the endpoint from the environment as the AWS SDKs do. */
export function imdsEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.AWS_EC2_METADATA_SERVICE_ENDPOINT?.trim()
  if (explicit) return explicit.replace(/\/+$/, '')
  return env.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE?.toLowerCase() === 'ipv6' ? 'http://[fd00:ec2::254]' : 'http://169.254.169.254'
}

export function createImds(options: ImdsOptions): Imds {
  const endpoint = (options.endpoint ?? imdsEndpointFromEnv()).replace(/\/+$/, '')
  const timeoutMs = options.timeoutMs ?? 1_000
  const log = options.logger
  // undefined: not tried yet; null: IMDSv1 fallback; string: a live v2 token.
  let token: { value: string | null; expires: number } | undefined

  async function request(method: 'GET' | 'PUT', path: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const res = await fetch(endpoint + path, { method, headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) })
    return res
  }

  async function sessionToken(signal: AbortSignal): Promise<string | null> {
    if (token !== undefined && token.expires > options.clock.now()) return token.value
    let value: string | null = null
    try {
      const res = await request('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_S) }, signal)
      if (res.ok) value = await res.text()
      else {
        await res.body?.cancel()
        log.debug('imds token refused, using IMDSv1', { status: res.status })
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason
      log.debug('imds token request failed, using IMDSv1', { error: (err as Error).message })
    }
    // Refresh a minute early; retry v2 after a minute when we fell back.
    token = { value, expires: options.clock.now() + (value === null ? 60 : TOKEN_TTL_S - 60) * 1000 }
    return value
  }

  async function get(path: string, signal: AbortSignal): Promise<string> {
    return withRetry(
      async () => {
        const t = await sessionToken(signal)
        const res = await request('GET', path, t === null ? {} : { 'x-aws-ec2-metadata-token': t }, signal)
        const body = await res.text()
        if (res.ok) return body.trim()
        if (res.status === 401) token = undefined // token expired or v1 disabled: fetch a new one
        throw new CloudError({
          operation: 'IMDS GET',
          resource: path,
          cloudCode: String(res.status),
          cloudMessage: res.status === 401 ? 'the metadata service requires an IMDSv2 token' : body.slice(0, 200),
          httpStatus: res.status,
          retryable: isRetryableStatus(res.status) || res.status === 401,
        })
      },
      { clock: options.clock, logger: log },
      { what: `IMDS GET ${path}`, signal, policy: options.retryPolicy ?? { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 1_000 }, isRetryable },
    )
  }

  return {
    async identity(signal) {
      try {
        const region = await get('/latest/meta-data/placement/region', signal)
        const instanceId = await get('/latest/meta-data/instance-id', signal)
        return { region, instanceId }
      } catch (err) {
        if (signal.aborted || err instanceof CloudError) throw err
        throw new WeftError('CLOUD_API_FAILED', `instance metadata service at ${endpoint} is not reachable: ${(err as Error).message}; run on EC2 or set AWS_EC2_METADATA_SERVICE_ENDPOINT`, { cause: err })
      }
    },
  }
}

function isRetryable(err: unknown): boolean {
  if (err instanceof CloudError) return err.retryable
  // fetch failures (connection refused, timeout) are worth a couple of quick retries
  return err instanceof TypeError || (err as Error)?.name === 'TimeoutError'
}
