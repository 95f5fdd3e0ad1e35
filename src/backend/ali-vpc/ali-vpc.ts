/**
 * ali-vpc backend: pods of a host are reached through a custom entry in the VPC's VRouter
 * route table whose next hop is the host's ECS instance; no encapsulation, no kernel routes.
 *
 * Design notes (flannel `backend/alivpc` at bb657386^, §6.7 of the reference):
 * - Credentials: Backend.AccessKeyID/AccessKeySecret, else ACCESS_KEY_ID/ACCESS_KEY_SECRET;
 *   checked before the lease is taken, so a host without keys fails fast and holds no subnet.
 * - Region, instance and VPC come from the metadata service; DescribeVpcs gives the VRouter,
 *   DescribeVRouters its first route table (the system table, as flannel used).
 * - Cleaning: custom entries whose next hop is this instance and whose destination lies inside
 *   the flannel Network, other than our subnet, are stale (an earlier lease) and deleted.
 *   flannel deleted every entry of the instance except 0.0.0.0/0; we leave entries outside the
 *   Network alone, since they are not flannel's. An entry for our subnet via another instance
 *   is a previous owner's and is deleted too (it would make CreateRouteEntry fail).
 * - An existing entry for our subnet via this instance is kept: a restart makes no mutation.
 * - Limit: 50 custom entries per table. Checked after the deletes, before the create, so the
 *   operator reads counts and advice instead of a bare quota error.
 * - After CreateRouteEntry we poll DescribeRouteTables until the entry is Available (60 s,
 *   as flannel's WaitForAllRouteEntriesAvailable).
 * - Every API error names the action, the resource, Alibaba's code and RequestId; throttling
 *   and 5xx are retried with backoff (backend/cloud/retry.ts). Secrets never reach a message.
 */
import { WeftError } from '../../errors.ts'
import { formatCidr, type IpNet } from '../../ip/ip.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { Logger } from '../../log/logger.ts'
import type { RetryPolicy } from '../cloud/retry.ts'
import { checkRouteLimit, nearRouteLimit } from '../cloud/route-limit.ts'
import { type AliVpcOptions, resolveAliCredentials } from './ali-vpc-options.ts'
import { ALI_METADATA_DEFAULT, AliMetadata, type AliSelf } from './ali-metadata.ts'
import type { VpcRoutesApi } from './vpc-routes-api.ts'
import { ALI_ROUTE_LIMIT, findEntry, planAliRoutes } from './ali-route-plan.ts'
import type { AliVpcApiConfig } from './ali-vpc-routes-api.ts'
import { untilAborted } from '../../util/abort.ts'

export const ALI_VPC_DEFAULT_ENDPOINT = 'https://vpc.aliyuncs.com'

/** Knobs tests turn; production uses the defaults. */
export interface AliVpcRuntime {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly createApi?: (config: AliVpcApiConfig) => Promise<VpcRoutesApi>
  readonly pollIntervalMs?: number
  readonly availableTimeoutMs?: number
  readonly routeLimit?: number
  readonly retryPolicy?: RetryPolicy
  readonly metadataTimeoutMs?: number
  /** Replaces the metadata client (unit tests). */
  readonly metadata?: { self(signal: AbortSignal): Promise<AliSelf> }
}

/** Registry factory: reads the process environment once, here at the edge. */
export function aliVpc(options: AliVpcOptions, deps: BackendDeps): Backend {
  return createAliVpcBackend(options, deps, { env: process.env })
}

export function createAliVpcBackend(options: AliVpcOptions, deps: BackendDeps, runtime: AliVpcRuntime): Backend {
  const log = deps.logger.child({ component: 'backend/ali-vpc' })
  return {
    type: 'ali-vpc',
    async registerNetwork(config: NetworkConfig, signal: AbortSignal): Promise<Network> {
      const credentials = resolveAliCredentials(options, runtime.env)
      const lease = await deps.subnetManager.acquireLease(config, { publicIP: deps.extIface.extAddr, backendType: 'ali-vpc' }, signal)
      if (lease.subnet === undefined || config.ipv4 === undefined) {
        throw new WeftError('BACKEND_UNSUPPORTED', 'ali-vpc backend needs an IPv4 subnet; VPC route entries are programmed for IPv4 only')
      }
      const metadata = runtime.metadata ?? new AliMetadata(options.metadataEndpoint ?? ALI_METADATA_DEFAULT, {
        clock: deps.clock, logger: log, ...(runtime.metadataTimeoutMs ? { timeoutMs: runtime.metadataTimeoutMs } : {}),
      })
      const self = await metadata.self(signal)
      const createApi = runtime.createApi ?? (async (c: AliVpcApiConfig) => (await import('./ali-vpc-routes-api.ts')).createAliVpcRoutesApi(c))
      const api = await createApi({
        endpoint: options.vpcEndpoint ?? ALI_VPC_DEFAULT_ENDPOINT, credentials, clock: deps.clock, logger: log,
        ...(runtime.retryPolicy ? { retryPolicy: runtime.retryPolicy } : {}),
      })
      await new EntryProgrammer(api, self, deps, log, runtime).ensure(lease.subnet, config.ipv4.network, signal)
      return { lease, mtu: deps.extIface.mtu, run: untilAborted }
    },
  }
}



class EntryProgrammer {
  constructor(
    private readonly api: VpcRoutesApi,
    private readonly self: AliSelf,
    private readonly deps: BackendDeps,
    private readonly log: Logger,
    private readonly runtime: AliVpcRuntime,
  ) {}

  async ensure(subnet: IpNet, network: IpNet, signal: AbortSignal): Promise<void> {
    const { regionId, instanceId, vpcId } = this.self
    const { vRouterId } = await this.api.describeVpc(regionId, vpcId, signal)
    const { routeTableIds } = await this.api.describeVRouter(regionId, vRouterId, signal)
    const tableId = routeTableIds[0]
    if (tableId === undefined) throw new WeftError('CLOUD_API_FAILED', `DescribeVRouters ${vRouterId}: the vrouter of ${vpcId} has no route table`, { details: { vRouterId, vpcId } })
    const entries = await this.api.describeRouteTable(regionId, vRouterId, tableId, signal)
    const plan = planAliRoutes({ entries, instanceId, subnet, network })
    const destination = formatCidr(subnet)
    const limit = this.runtime.routeLimit ?? ALI_ROUTE_LIMIT
    if (plan.create) {
      const err = checkRouteLimit({
        provider: 'alibaba', scope: `route table ${tableId}`, existing: plan.customAfterDeletes, adding: 1, limit, destination,
        hint: 'ask Alibaba Cloud to raise the custom route entry quota of the table, or use the vxlan backend for clusters this size',
      })
      if (err) throw err
    }
    for (const { entry, reason } of plan.deletes) {
      this.log.info('deleting route entry', { routeTable: tableId, destination: entry.destinationCidrBlock, nextHop: entry.instanceId, reason })
      await this.api.deleteRouteEntry(regionId, tableId, entry.destinationCidrBlock, entry.instanceId, signal)
    }
    const fields = { routeTable: tableId, destination, instanceId }
    if (plan.create) {
      await this.api.createRouteEntry(regionId, tableId, destination, instanceId, signal)
      this.log.info('route entry created', fields)
      if (nearRouteLimit(plan.customAfterDeletes + 1, limit)) this.log.warn('route table is close to its entry limit', { routeTable: tableId, entries: plan.customAfterDeletes + 1, limit })
    } else {
      this.log.info('route entry already points at this instance', fields)
    }
    if (plan.create || plan.keep?.status !== 'Available') await this.waitAvailable(vRouterId, tableId, subnet, signal)
  }

  /** Polls the table until our entry is Available (flannel waited 60 s). */
  private async waitAvailable(vRouterId: string, tableId: string, subnet: IpNet, signal: AbortSignal): Promise<void> {
    const timeout = this.runtime.availableTimeoutMs ?? 60_000
    const deadline = this.deps.clock.now() + timeout
    for (;;) {
      const entry = findEntry(await this.api.describeRouteTable(this.self.regionId, vRouterId, tableId, signal), subnet, this.self.instanceId)
      if (entry?.status === 'Available') return
      if (this.deps.clock.now() >= deadline) {
        throw new WeftError('CLOUD_API_FAILED', `CreateRouteEntry ${tableId} ${formatCidr(subnet)}: entry is ${entry?.status ?? 'missing'} after ${Math.round(timeout / 1000)}s, expected Available`, {
          details: { routeTable: tableId, destination: formatCidr(subnet), status: entry?.status ?? 'missing' },
        })
      }
      await this.deps.clock.sleep(this.runtime.pollIntervalMs ?? 1_000, signal)
    }
  }
}
