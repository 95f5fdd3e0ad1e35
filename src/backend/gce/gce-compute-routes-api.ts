/**
 * ComputeRoutesApi over Google's official Node client (@google-cloud/compute) in its REST
 * transport, so it speaks HTTP/JSON to compute.googleapis.com, a private endpoint or a local
 * emulator alike. The only module that imports the SDK; gce.ts loads it lazily.
 *
 * Auth: on GCE the instance's service-account token comes from the metadata server (what
 * Google's default credentials do there); we fetch it through our own metadata client so the
 * endpoint is the configured one. The same object is the SDK's HTTP transport, which lets us
 * read Google's error envelope (`errors[0].reason`, the HTTP status) before the SDK maps it.
 */
import type { Clock } from '../../util/clock.ts'
import type { Logger } from '../../log/logger.ts'
import { withRetry, type RetryPolicy } from '../cloud/retry.ts'
import { CloudError, isRetryableStatus, isTransientNetworkError } from '../cloud/cloud-error.ts'
import type { GceMetadataSource, GceToken } from './gce-metadata.ts'
import type { ComputeRoutesApi, GceOperation, GceOperationStatus, GceRoute, GceSelf, GceSelfLinks } from './compute-routes-api.ts'
import { loadSdk } from '../cloud/load-sdk.ts'



export interface GceComputeConfig {
  /** `http(s)://host[:port]` of the Compute API. */
  readonly endpoint: string
  readonly metadata: GceMetadataSource
  readonly clock: Clock
  readonly logger: Logger
  readonly retryPolicy?: RetryPolicy
  /** Per-request timeout (default 30 s). */
  readonly requestTimeoutMs?: number
}

/** Builds the SDK clients; the import happens here so other backends never load the SDK. */
export async function createGceComputeRoutesApi(config: GceComputeConfig): Promise<ComputeRoutesApi> {
  const sdk = loadSdk<typeof import('@google-cloud/compute')>('@google-cloud/compute')
  const url = new URL(config.endpoint)
  const protocol = url.protocol.replace(':', '')
  const auth = new MetadataTokenAuth(config.metadata, config.clock, config.requestTimeoutMs ?? 30_000)
  const opts = {
    fallback: 'rest',
    apiEndpoint: url.hostname,
    port: Number(url.port || (protocol === 'https' ? 443 : 80)),
    protocol,
    authClient: auth,
  } as unknown as ConstructorParameters<typeof sdk.RoutesClient>[0]
  return new SdkComputeRoutesApi(
    new sdk.RoutesClient(opts),
    new sdk.NetworksClient(opts),
    new sdk.InstancesClient(opts),
    new sdk.GlobalOperationsClient(opts),
    config,
  )
}

type Sdk = typeof import('@google-cloud/compute')
type Clients = [InstanceType<Sdk['RoutesClient']>, InstanceType<Sdk['NetworksClient']>, InstanceType<Sdk['InstancesClient']>, InstanceType<Sdk['GlobalOperationsClient']>]

// Retries are ours (withRetry); the SDK's own retry would double them.
const NO_SDK_RETRY = { retry: null } as const

class SdkComputeRoutesApi implements ComputeRoutesApi {
  constructor(
    private readonly routes: Clients[0],
    private readonly networks: Clients[1],
    private readonly instances: Clients[2],
    private readonly operations: Clients[3],
    private readonly config: GceComputeConfig,
  ) {}

  async resolveSelfLinks(self: GceSelf, signal: AbortSignal): Promise<GceSelfLinks> {
    const [network] = await this.call('networks.get', self.network, signal, () => this.networks.get({ project: self.project, network: self.network }, NO_SDK_RETRY))
    const [instance] = await this.call('instances.get', `${self.zone}/${self.instance}`, signal, () =>
      this.instances.get({ project: self.project, zone: self.zone, instance: self.instance }, NO_SDK_RETRY))
    return { networkSelfLink: network.selfLink ?? '', instanceSelfLink: instance.selfLink ?? '' }
  }

  async getRoute(project: string, name: string, signal: AbortSignal): Promise<GceRoute | undefined> {
    try {
      const [route] = await this.call('routes.get', name, signal, () => this.routes.get({ project, route: name }, NO_SDK_RETRY))
      return toRoute(route)
    } catch (err) {
      if (err instanceof CloudError && err.httpStatus === 404) return undefined
      throw err
    }
  }

  async listRoutes(project: string, signal: AbortSignal): Promise<readonly GceRoute[]> {
    const [routes] = await this.call('routes.list', project, signal, () => this.routes.list({ project, maxResults: 500 }, { ...NO_SDK_RETRY, autoPaginate: true }))
    return routes.map(toRoute)
  }

  async insertRoute(project: string, route: GceRoute, signal: AbortSignal): Promise<GceOperation> {
    const routeResource = { name: route.name, destRange: route.destRange, network: route.network, nextHopInstance: route.nextHopInstance, priority: route.priority, tags: [] }
    const [op] = await this.call('routes.insert', route.name, signal, () => this.routes.insert({ project, routeResource }, NO_SDK_RETRY))
    return this.operation(project, op.latestResponse as SdkOperation, route.name)
  }

  async deleteRoute(project: string, name: string, signal: AbortSignal): Promise<GceOperation> {
    const [op] = await this.call('routes.delete', name, signal, () => this.routes.delete({ project, route: name }, NO_SDK_RETRY))
    return this.operation(project, op.latestResponse as SdkOperation, name)
  }

  private operation(project: string, started: SdkOperation, resource: string): GceOperation {
    const name = started.name ?? ''
    return {
      name,
      poll: async (signal) => {
        const [op] = await this.call('globalOperations.get', `${name} (${resource})`, signal, () => this.operations.get({ project, operation: name }, NO_SDK_RETRY))
        return toStatus(op as SdkOperation)
      },
    }
  }

  /** One SDK call with retry on throttling/5xx/resets; failures become CloudErrors. */
  private call<T>(operation: string, resource: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    this.config.logger.debug('cloud api call', { call: operation, resource })
    return withRetry(
      async () => {
        signal.throwIfAborted()
        try {
          return await fn()
        } catch (err) {
          throw toCloudError(operation, resource, err)
        }
      },
      { clock: this.config.clock, logger: this.config.logger },
      { what: `${operation} ${resource}`, signal, ...(this.config.retryPolicy ? { policy: this.config.retryPolicy } : {}) },
    )
  }
}

interface SdkOperation {
  name?: string | null
  status?: string | null
  error?: { errors?: Array<{ code?: string | null; message?: string | null }> | null } | null
}

function toRoute(r: { name?: string | null; destRange?: string | null; network?: string | null; nextHopInstance?: string | null; priority?: number | null }): GceRoute {
  return { name: r.name ?? '', destRange: r.destRange ?? '', network: r.network ?? '', nextHopInstance: r.nextHopInstance ?? '', priority: r.priority ?? 0 }
}

function toStatus(op: SdkOperation): GceOperationStatus {
  const status = op.status === 'DONE' || op.status === 'RUNNING' ? op.status : 'PENDING'
  const first = op.error?.errors?.[0]
  return { name: op.name ?? '', status, ...(first ? { error: { code: first.code ?? 'UNKNOWN', message: first.message ?? '' } } : {}) }
}

/** An HTTP error reply, decoded from Google's envelope `{"error":{"code","message","errors":[{"reason"}]}}`. */
export class GoogleHttpError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message)
    this.name = 'GoogleHttpError'
  }

  static parse(status: number, text: string): GoogleHttpError {
    try {
      const body = JSON.parse(text) as { error?: { message?: string; status?: string; errors?: Array<{ reason?: string }> } }
      const e = body.error
      return new GoogleHttpError(status, e?.errors?.[0]?.reason ?? e?.status ?? `HTTP ${status}`, e?.message ?? '')
    } catch {
      return new GoogleHttpError(status, `HTTP ${status}`, text.slice(0, 200))
    }
  }
}

const THROTTLE_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'RESOURCE_EXHAUSTED'])

export function toCloudError(operation: string, resource: string, err: unknown): unknown {
  if (err instanceof CloudError || (err as { name?: string }).name === 'AbortError') return err
  if (err instanceof GoogleHttpError) {
    const retryable = err.status === 429 || isRetryableStatus(err.status) || THROTTLE_REASONS.has(err.reason)
    const code = err.status === 401 ? 'CLOUD_CREDENTIALS' : err.reason === 'quotaExceeded' ? 'CLOUD_ROUTE_LIMIT' : 'CLOUD_API_FAILED'
    const failure = { operation, resource, cloudCode: err.reason, cloudMessage: err.message, httpStatus: err.status, retryable }
    return new CloudError(failure, { code, cause: err })
  }
  // fetch failures carry the socket error as `cause` (ECONNREFUSED, ECONNRESET, ...).
  const cause = (err as { cause?: unknown }).cause ?? err
  const code = (cause as { code?: unknown }).code
  return new CloudError(
    { operation, resource, cloudCode: typeof code === 'string' ? code : 'NETWORK', cloudMessage: (cause as Error).message ?? String(cause), retryable: isTransientNetworkError(cause) || (err as Error).name === 'TimeoutError' },
    { cause: err },
  )
}

/**
 * The SDK's auth + transport hook: adds the bearer token and turns error replies into
 * GoogleHttpError (the SDK passes a rejected fetch through unchanged).
 */
class MetadataTokenAuth {
  private token: GceToken | undefined

  constructor(private readonly metadata: GceMetadataSource, private readonly clock: Clock, private readonly timeoutMs: number) {}

  async getRequestHeaders(): Promise<Headers> {
    return new Headers({ authorization: `Bearer ${await this.accessToken()}` })
  }

  async fetch(url: string, init: { method?: string; headers?: HeadersInit; body?: string | Uint8Array; signal?: AbortSignal }): Promise<Response> {
    const headers = new Headers(init.headers)
    headers.set('authorization', `Bearer ${await this.accessToken()}`)
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      ...(init.body === undefined ? {} : { body: typeof init.body === 'string' ? init.body : new Uint8Array(init.body) }),
      signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout,
    })
    if (!res.ok && res.status !== 204) throw GoogleHttpError.parse(res.status, await res.text())
    return res
  }

  private async accessToken(): Promise<string> {
    // Refresh a minute early so a token never expires mid-call.
    if (this.token === undefined || this.token.expiresAt - 60_000 <= this.clock.now()) {
      this.token = await this.metadata.token(AbortSignal.timeout(10_000))
    }
    return this.token.accessToken
  }
}
