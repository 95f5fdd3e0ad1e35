/**
 * VpcRoutesApi over Alibaba Cloud's official Node SDK core (@alicloud/pop-core): RPC-style
 * requests (Action, Version, Timestamp, SignatureNonce, HMAC-SHA1 Signature) to the VPC API.
 * The only module that imports the SDK; ali-vpc.ts loads it lazily.
 */
import type { Clock } from '../../util/clock.ts'
import type { Logger } from '../../log/logger.ts'
import { withRetry, type RetryPolicy } from '../cloud/retry.ts'
import { CloudError, isTransientNetworkError } from '../cloud/cloud-error.ts'
import type { AliCredentials } from './ali-vpc-options.ts'
import type { AliRouteEntry, VpcRoutesApi } from './vpc-routes-api.ts'
import { loadSdk } from '../cloud/load-sdk.ts'


const API_VERSION = '2016-04-28'
const PAGE_SIZE = 50

export interface AliVpcApiConfig {
  readonly endpoint: string
  readonly credentials: AliCredentials
  readonly clock: Clock
  readonly logger: Logger
  readonly retryPolicy?: RetryPolicy
  /** Per-request timeout (default 30 s). */
  readonly requestTimeoutMs?: number
}

interface RpcClient {
  request<T>(action: string, params: object, options?: object): Promise<T>
}

export async function createAliVpcRoutesApi(config: AliVpcApiConfig): Promise<VpcRoutesApi> {
  const RPCClient = loadSdk<typeof import('@alicloud/pop-core')>('@alicloud/pop-core')
  const client = new RPCClient({
    endpoint: config.endpoint,
    apiVersion: API_VERSION,
    accessKeyId: config.credentials.accessKeyId,
    accessKeySecret: config.credentials.accessKeySecret,
  })
  return new PopVpcRoutesApi(client, config)
}

// Codes Alibaba documents as "try again later".
const RETRYABLE_CODES = new Set(['Throttling', 'Throttling.User', 'Throttling.Api', 'ServiceUnavailable', 'InternalError', 'UnknownError', 'OperationConflict', 'TaskConflict'])

class PopVpcRoutesApi implements VpcRoutesApi {
  constructor(private readonly client: RpcClient, private readonly config: AliVpcApiConfig) {}

  async describeVpc(regionId: string, vpcId: string, signal: AbortSignal): Promise<{ vRouterId: string }> {
    const reply = await this.call<{ Vpcs?: { Vpc?: Array<{ VpcId?: string; VRouterId?: string }> } }>('DescribeVpcs', vpcId, { RegionId: regionId, VpcId: vpcId }, signal)
    const vpc = reply.Vpcs?.Vpc?.find((v) => v.VpcId === vpcId)
    if (!vpc?.VRouterId) throw notFound('DescribeVpcs', vpcId, 'InvalidVpcId.NotFound', `vpc ${vpcId} not found in region ${regionId}`)
    return { vRouterId: vpc.VRouterId }
  }

  async describeVRouter(regionId: string, vRouterId: string, signal: AbortSignal): Promise<{ routeTableIds: string[] }> {
    const reply = await this.call<{ VRouters?: { VRouter?: Array<{ VRouterId?: string; RouteTableIds?: { RouteTableId?: string[] } }> } }>(
      'DescribeVRouters', vRouterId, { RegionId: regionId, VRouterId: vRouterId }, signal)
    const router = reply.VRouters?.VRouter?.find((r) => r.VRouterId === vRouterId)
    if (!router) throw notFound('DescribeVRouters', vRouterId, 'InvalidVRouterId.NotFound', `vrouter ${vRouterId} not found in region ${regionId}`)
    return { routeTableIds: router.RouteTableIds?.RouteTableId ?? [] }
  }

  async describeRouteTable(regionId: string, vRouterId: string, routeTableId: string, signal: AbortSignal): Promise<AliRouteEntry[]> {
    type Reply = { TotalCount?: number; RouteTables?: { RouteTable?: Array<{ RouteTableId?: string; RouteEntrys?: { RouteEntry?: RawEntry[] } }> } }
    // Pages are walked until TotalCount entries were seen or a page comes back short, so a
    // full table (50 custom + system entries) is read whole whichever way the API pages.
    const entries = new Map<string, AliRouteEntry>()
    for (let page = 1; page <= 20; page++) {
      const reply = await this.call<Reply>('DescribeRouteTables', routeTableId, {
        RegionId: regionId, VRouterId: vRouterId, RouteTableId: routeTableId, PageSize: PAGE_SIZE, PageNumber: page,
      }, signal)
      const table = reply.RouteTables?.RouteTable?.find((t) => t.RouteTableId === routeTableId)
      if (!table) {
        if (page > 1) break
        throw notFound('DescribeRouteTables', routeTableId, 'InvalidRouteTableId.NotFound', `route table ${routeTableId} not found`)
      }
      const raw = table.RouteEntrys?.RouteEntry ?? []
      for (const e of raw.map(toEntry)) entries.set(`${e.destinationCidrBlock} ${e.instanceId}`, e)
      if (raw.length < PAGE_SIZE || entries.size >= (reply.TotalCount ?? 0)) break
    }
    return [...entries.values()]
  }

  async createRouteEntry(regionId: string, routeTableId: string, destination: string, instanceId: string, signal: AbortSignal): Promise<void> {
    await this.call('CreateRouteEntry', `${routeTableId} ${destination}`, {
      RegionId: regionId, RouteTableId: routeTableId, DestinationCidrBlock: destination, NextHopType: 'Instance', NextHopId: instanceId,
    }, signal)
  }

  async deleteRouteEntry(regionId: string, routeTableId: string, destination: string, nextHopId: string, signal: AbortSignal): Promise<void> {
    await this.call('DeleteRouteEntry', `${routeTableId} ${destination}`, {
      RegionId: regionId, RouteTableId: routeTableId, DestinationCidrBlock: destination, ...(nextHopId === '' ? {} : { NextHopId: nextHopId }),
    }, signal)
  }

  /** One signed request with retry on throttling/5xx/resets; failures become CloudErrors. */
  private call<T>(action: string, resource: string, params: Record<string, string | number>, signal: AbortSignal): Promise<T> {
    this.config.logger.debug('cloud api call', { call: action, resource })
    return withRetry(
      async () => {
        signal.throwIfAborted()
        try {
          // POST keeps the signed parameters out of proxy logs.
          return await this.client.request<T>(action, params, { method: 'POST', timeout: this.config.requestTimeoutMs ?? 30_000 })
        } catch (err) {
          throw toCloudError(action, resource, err)
        }
      },
      { clock: this.config.clock, logger: this.config.logger },
      { what: `${action} ${resource}`, signal, ...(this.config.retryPolicy ? { policy: this.config.retryPolicy } : {}) },
    )
  }
}

interface RawEntry {
  DestinationCidrBlock?: string
  Type?: string
  Status?: string
  NextHopType?: string
  InstanceId?: string
  NextHops?: { NextHop?: Array<{ NextHopId?: string; NextHopType?: string }> }
}

function toEntry(e: RawEntry): AliRouteEntry {
  const hop = e.NextHops?.NextHop?.[0]
  return {
    destinationCidrBlock: e.DestinationCidrBlock ?? '',
    type: e.Type ?? '',
    status: e.Status ?? '',
    nextHopType: e.NextHopType ?? hop?.NextHopType ?? '',
    instanceId: e.InstanceId || hop?.NextHopId || '',
  }
}

function notFound(operation: string, resource: string, cloudCode: string, cloudMessage: string): CloudError {
  return new CloudError({ operation, resource, cloudCode, cloudMessage, retryable: false })
}

/**
 * pop-core throws `{code, data: {RequestId, Message}}` for error replies. Its message embeds
 * the signed URL (with AccessKeyId), so we build ours from `data` only.
 */
export function toCloudError(operation: string, resource: string, err: unknown): unknown {
  if (err instanceof CloudError || (err as { name?: string }).name === 'AbortError') return err
  const e = err as { code?: unknown; data?: { Code?: string; Message?: string; RequestId?: string }; entry?: { response?: { statusCode?: number } } }
  if (e.data?.Code !== undefined) {
    const status = e.entry?.response?.statusCode
    const code = e.data.Code
    const retryable = RETRYABLE_CODES.has(code) || code.startsWith('Throttling') || (status !== undefined && status >= 500)
    const credential = /^(InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden\.RAM|IncompleteSignature|InvalidAccessKeySecret)/.test(code)
    const message = `${e.data.Message ?? ''}${e.data.RequestId ? ` (RequestId ${e.data.RequestId})` : ''}`
    const failure = { operation, resource, cloudCode: code, cloudMessage: message, retryable, ...(status === undefined ? {} : { httpStatus: status }) }
    return new CloudError(failure, { code: credential ? 'CLOUD_CREDENTIALS' : /^QuotaExceeded/.test(code) ? 'CLOUD_ROUTE_LIMIT' : 'CLOUD_API_FAILED' })
  }
  // Socket failures (httpx adds the socket code) and non-JSON replies (e.g. a bare 502 page).
  const code = typeof e.code === 'string' ? e.code : (err as { name?: string }).name === 'SyntaxError' ? 'InvalidResponse' : 'NETWORK'
  const retryable = isTransientNetworkError(err) || code === 'InvalidResponse' || /timeout/i.test(String((err as Error).name))
  return new CloudError({ operation, resource, cloudCode: code, cloudMessage: scrub((err as Error).message ?? String(err)), retryable }, { cause: err })
}

/** Drops a query string (signed parameters) from a message. */
function scrub(message: string): string {
  return message.replace(/\?[^\s,]*/g, '?…')
}
