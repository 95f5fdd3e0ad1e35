/**
 * Errors from cloud APIs (AWS, GCE, Alibaba), shaped the same for every provider so operators
 * read one format: `<operation> <resource>: <cloud code> <cloud message>`.
 */
import { WeftError, isWeftError } from '../../errors.ts'
import type { ErrorCode } from '../../errors.ts'

/** What a provider adapter knows about one failed call, before it becomes a CloudError. */
export interface CloudFailure {
  /** The API operation, as the provider names it (`CreateRoute`, `routes.insert`). */
  readonly operation: string
  /** The resource the call was about (`rtb-0abc`, `flannel-10-5-3-0-24`); '' when none. */
  readonly resource: string
  /** The cloud's own error code (`InvalidRouteTableID.NotFound`, `RequestLimitExceeded`). */
  readonly cloudCode: string
  /** The cloud's message, as returned. */
  readonly cloudMessage: string
  /** HTTP status of the reply, when there was one. */
  readonly httpStatus?: number
  /** True when a later identical call may succeed (throttling, 5xx, network reset). */
  readonly retryable: boolean
}

/**
 * A failed cloud API call. The code is CLOUD_API_FAILED unless the caller picks a more
 * specific one (CLOUD_CREDENTIALS, CLOUD_ROUTE_LIMIT).
 */
export class CloudError extends WeftError {
  readonly operation: string
  readonly resource: string
  readonly cloudCode: string
  readonly httpStatus: number | undefined
  readonly retryable: boolean

  constructor(failure: CloudFailure, options: { code?: ErrorCode; cause?: unknown } = {}) {
    super(options.code ?? 'CLOUD_API_FAILED', formatCloudFailure(failure), {
      details: {
        operation: failure.operation,
        resource: failure.resource,
        cloudCode: failure.cloudCode,
        httpStatus: failure.httpStatus,
      },
      cause: options.cause,
    })
    this.name = 'CloudError'
    this.operation = failure.operation
    this.resource = failure.resource
    this.cloudCode = failure.cloudCode
    this.httpStatus = failure.httpStatus
    this.retryable = failure.retryable
  }
}

/** `CreateRoute rtb-1: RouteAlreadyExists the route already exists`, without a trailing period. */
export function formatCloudFailure(f: Pick<CloudFailure, 'operation' | 'resource' | 'cloudCode' | 'cloudMessage'>): string {
  const head = f.resource === '' ? f.operation : `${f.operation} ${f.resource}`
  const message = f.cloudMessage.trim().replace(/\.+$/, '')
  const tail = message === '' || message === f.cloudCode ? f.cloudCode : `${f.cloudCode} ${message}`
  return `${head}: ${tail}`
}

/** True for a CloudError (or any error) that says a retry may help. */
export function isRetryableCloudError(err: unknown): boolean {
  return err instanceof CloudError ? err.retryable : isWeftError(err) ? false : isTransientNetworkError(err)
}

/** Connection-level failures worth retrying: the request may never have reached the cloud. */
export function isTransientNetworkError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET'].includes(code)
}

/** HTTP statuses that are the cloud's fault and usually pass (500, 502, 503, 504). */
export function isRetryableStatus(status: number | undefined): boolean {
  return status !== undefined && [500, 502, 503, 504].includes(status)
}

/**
 * Missing or rejected credentials: one line saying where the SDK looked and what to set,
 * with no stack and never the secret values (the cause is kept for debug logs only).
 */
export function credentialsError(provider: string, problem: string, hint: string, cause?: unknown): WeftError {
  return new WeftError('CLOUD_CREDENTIALS', `${provider} credentials ${problem}; ${hint}`, { details: { provider }, cause })
}
