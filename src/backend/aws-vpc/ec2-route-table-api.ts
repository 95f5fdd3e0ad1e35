/**
 * RouteTableApi over the official AWS SDK v3 EC2 client. The only module that imports
 * `@aws-sdk/*`, and it does so lazily, so daemons running other backends never load the SDK.
 *
 * Configuration is the SDK's own: credentials through its default chain (environment
 * variables, shared config/credentials files, web identity, container or instance role), and
 * the endpoint through `AWS_ENDPOINT_URL_EC2`, else `AWS_ENDPOINT_URL`, else the regional
 * default. SDK retries are off (`maxAttempts: 1`): throttling and 5xx are retried by
 * `withRetry` so every cloud backend backs off (and logs) the same way.
 */
import type { Logger } from '../../log/logger.ts'
import type { Clock } from '../../util/clock.ts'
import { CloudError, credentialsError, isRetryableStatus, isTransientNetworkError } from '../cloud/cloud-error.ts'
import { withRetry } from '../cloud/retry.ts'
import type { RetryPolicy } from '../cloud/retry.ts'
import type { InstanceInfo, RouteTable, RouteTableApi, RouteTableQuery, TableRoute } from './route-table-api.ts'
import { loadSdk } from '../cloud/load-sdk.ts'

export interface Ec2ApiOptions {
  readonly region: string
  readonly logger: Logger
  readonly clock: Clock
  readonly retryPolicy?: RetryPolicy
  /** Overrides the SDK's endpoint resolution (tests, private clouds); normally unset. */
  readonly endpoint?: string
}

/** Codes the SDKs treat as throttling (subset relevant to EC2). */
const THROTTLING = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'RequestThrottledException', 'TooManyRequestsException', 'SlowDown'])
const AUTH = new Set(['AuthFailure', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'UnrecognizedClientException', 'ExpiredToken', 'MissingAuthenticationToken'])

const CREDENTIALS_HINT =
  'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, use a shared profile (AWS_PROFILE), or attach an IAM instance role allowing ' +
  'ec2:DescribeInstances, ec2:ModifyNetworkInterfaceAttribute, ec2:DescribeRouteTables, ec2:CreateRoute, ec2:ReplaceRoute and ec2:DeleteRoute'

/** Loads the SDK and returns the API; the client itself is created once per daemon. */
export async function createEc2RouteTableApi(options: Ec2ApiOptions): Promise<RouteTableApi> {
  const sdk = loadSdk<typeof import('@aws-sdk/client-ec2')>('@aws-sdk/client-ec2')
  const client = new sdk.EC2Client({
    region: options.region,
    maxAttempts: 1,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  })

  async function call<T>(operation: string, resource: string, signal: AbortSignal, send: () => Promise<T>): Promise<T> {
    return withRetry(
      async () => {
        try {
          options.logger.debug('ec2 call', { operation, resource })
          return await send()
        } catch (err) {
          if (signal.aborted) throw signal.reason
          throw toCloudError(err, operation, resource)
        }
      },
      { clock: options.clock, logger: options.logger },
      { what: `${operation} ${resource}`.trim(), signal, ...(options.retryPolicy === undefined ? {} : { policy: options.retryPolicy }) },
    )
  }

  return {
    async describeInstance(instanceId, signal) {
      const out = await call('DescribeInstances', instanceId, signal, () =>
        client.send(new sdk.DescribeInstancesCommand({ InstanceIds: [instanceId] }), { abortSignal: signal }))
      const inst = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId)
      if (inst === undefined) {
        throw new CloudError({ operation: 'DescribeInstances', resource: instanceId, cloudCode: 'InvalidInstanceID.NotFound', cloudMessage: 'the instance is not in the reply', retryable: false })
      }
      const info: InstanceInfo = {
        id: instanceId,
        vpcId: inst.VpcId ?? '',
        subnetId: inst.SubnetId ?? '',
        enis: (inst.NetworkInterfaces ?? []).map((n) => ({
          id: n.NetworkInterfaceId ?? '',
          subnetId: n.SubnetId ?? '',
          privateIps: (n.PrivateIpAddresses ?? []).map((p) => p.PrivateIpAddress ?? '').filter((ip) => ip !== ''),
          sourceDestCheck: n.SourceDestCheck ?? true,
        })),
      }
      return info
    },

    async disableSourceDestCheck(eniId, signal) {
      await call('ModifyNetworkInterfaceAttribute', eniId, signal, () =>
        client.send(new sdk.ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eniId, SourceDestCheck: { Value: false } }), { abortSignal: signal }))
    },

    async describeRouteTables(query, signal) {
      const input = describeInput(query)
      const resource = 'ids' in query ? query.ids.join(',') : 'subnetId' in query ? query.subnetId : query.vpcId
      const tables: RouteTable[] = []
      let nextToken: string | undefined
      do {
        const out = await call('DescribeRouteTables', resource, signal, () =>
          client.send(new sdk.DescribeRouteTablesCommand({ ...input, ...(nextToken === undefined ? {} : { NextToken: nextToken }) }), { abortSignal: signal }))
        for (const t of out.RouteTables ?? []) tables.push(toRouteTable(t))
        nextToken = out.NextToken
      } while (nextToken)
      return tables
    },

    async changeRoute(op, signal) {
      const resource = `${op.tableId} ${op.destination}`
      const base = { RouteTableId: op.tableId, DestinationCidrBlock: op.destination }
      if (op.kind === 'delete') {
        await call('DeleteRoute', resource, signal, () => client.send(new sdk.DeleteRouteCommand(base), { abortSignal: signal }))
      } else if (op.kind === 'create') {
        await call('CreateRoute', resource, signal, () => client.send(new sdk.CreateRouteCommand({ ...base, NetworkInterfaceId: op.eniId }), { abortSignal: signal }))
      } else {
        await call('ReplaceRoute', resource, signal, () => client.send(new sdk.ReplaceRouteCommand({ ...base, NetworkInterfaceId: op.eniId }), { abortSignal: signal }))
      }
    },

    close() {
      client.destroy()
    },
  } satisfies RouteTableApi
}

function describeInput(query: RouteTableQuery): { RouteTableIds?: string[]; Filters?: { Name: string; Values: string[] }[] } {
  if ('ids' in query) return { RouteTableIds: [...query.ids] }
  if ('subnetId' in query) return { Filters: [{ Name: 'association.subnet-id', Values: [query.subnetId] }] }
  return { Filters: [{ Name: 'association.main', Values: ['true'] }, { Name: 'vpc-id', Values: [query.vpcId] }] }
}

interface SdkRoute {
  DestinationCidrBlock?: string
  State?: string
  NetworkInterfaceId?: string
  InstanceId?: string
  GatewayId?: string
  NatGatewayId?: string
  TransitGatewayId?: string
  VpcPeeringConnectionId?: string
  Origin?: string
}

function toRouteTable(t: { RouteTableId?: string; VpcId?: string; Routes?: SdkRoute[] }): RouteTable {
  const routes: TableRoute[] = []
  let other = 0
  for (const r of t.Routes ?? []) {
    const origin = r.Origin ?? 'CreateRoute'
    if (r.DestinationCidrBlock === undefined) {
      if (origin !== 'EnableVgwRoutePropagation') other++
      continue
    }
    const target = r.NatGatewayId ?? r.TransitGatewayId ?? r.VpcPeeringConnectionId
    routes.push({
      destination: r.DestinationCidrBlock,
      state: r.State === 'blackhole' ? 'blackhole' : 'active',
      origin,
      ...(r.NetworkInterfaceId === undefined ? {} : { eniId: r.NetworkInterfaceId }),
      ...(r.InstanceId === undefined ? {} : { instanceId: r.InstanceId }),
      ...(r.GatewayId === undefined ? {} : { gatewayId: r.GatewayId }),
      ...(target === undefined ? {} : { otherTarget: target }),
    })
  }
  return { id: t.RouteTableId ?? '', vpcId: t.VpcId ?? '', routes, otherRouteCount: other }
}

/** Maps any SDK failure to CloudError (or CLOUD_CREDENTIALS), keeping the cloud's code. */
export function toCloudError(err: unknown, operation: string, resource: string): Error {
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number }; $fault?: string; $retryable?: unknown }
  if (e?.name === 'CredentialsProviderError') {
    return credentialsError('aws', 'not found (looked in environment variables, shared config files, container and instance role)', CREDENTIALS_HINT, err)
  }
  const status = e?.$metadata?.httpStatusCode
  const isService = e?.$fault !== undefined || status !== undefined
  const cloudCode = isService ? (e.name ?? 'Unknown') : (e?.code ?? e?.name ?? 'Error')
  const retryable = THROTTLING.has(cloudCode) || isRetryableStatus(status) || e?.$retryable !== undefined || (!isService && isTransientNetworkError(err))
  const code = AUTH.has(cloudCode) ? 'CLOUD_CREDENTIALS' : cloudCode === 'RouteLimitExceeded' ? 'CLOUD_ROUTE_LIMIT' : 'CLOUD_API_FAILED'
  return new CloudError(
    { operation, resource, cloudCode, cloudMessage: e?.message ?? String(err), ...(status === undefined ? {} : { httpStatus: status }), retryable },
    { code, cause: err },
  )
}
