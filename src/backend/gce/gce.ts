/**
 * gce backend: pods of a host are reached through a Compute Engine route whose next hop is
 * the host's instance; no encapsulation, no kernel routes on the host.
 *
 * Design notes (flannel `backend/gce` at bb657386^, §6.6 of the reference):
 * - One route per host, named `flannel-<subnet with . and / as ->`, in the instance's network.
 *   Names are the ownership key: a route with our name that already points at this instance
 *   (same range, same network) is left alone, so a restart makes no API mutation; any other
 *   route with our name is deleted and re-created (GCE routes are immutable).
 * - Project, zone, network and instance come from the metadata server (GCE_METADATA_HOST or
 *   Backend.MetadataEndpoint); the instance name is read from `instance/name`, not from the
 *   first label of the hostname as flannel did, so custom hostnames work.
 * - Mutations return global operations; we poll them (PENDING → RUNNING → DONE) every second
 *   for at most 100 s, like flannel, and fail with the operation name and last status.
 * - The project's route quota (100 by default) is checked before inserting, so the operator
 *   reads how many routes exist and what to do instead of a bare QUOTA_EXCEEDED.
 * - Every API error names the call, the resource and Google's reason; throttling and 5xx are
 *   retried with backoff (backend/cloud/retry.ts).
 * - Other hosts' routes are their owners' business: Network.run only waits for shutdown, and
 *   the route is kept on exit (the lease outlives restarts).
 */
import { WeftError } from '../../errors.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { Logger } from '../../log/logger.ts'
import type { RetryPolicy } from '../cloud/retry.ts'
import { CloudError } from '../cloud/cloud-error.ts'
import { checkRouteLimit, nearRouteLimit } from '../cloud/route-limit.ts'
import type { GceOptions } from './gce-options.ts'
import { GceMetadata, gceMetadataBase, type GceMetadataSource } from './gce-metadata.ts'
import type { ComputeRoutesApi, GceOperation, GceRoute } from './compute-routes-api.ts'
import { GCE_ROUTE_LIMIT, desiredGceRoute, planGceRoute } from './gce-route-plan.ts'
import type { GceComputeConfig } from './gce-compute-routes-api.ts'
import { untilAborted } from '../../util/abort.ts'

export const GCE_COMPUTE_DEFAULT_ENDPOINT = 'https://compute.googleapis.com'

/** Knobs tests turn; production uses the defaults. */
export interface GceRuntime {
  readonly env: Readonly<Record<string, string | undefined>>
  /** Builds the API; default: the SDK-backed implementation, imported lazily. */
  readonly createApi?: (config: GceComputeConfig) => Promise<ComputeRoutesApi>
  readonly pollIntervalMs?: number
  readonly operationTimeoutMs?: number
  readonly routeLimit?: number
  readonly retryPolicy?: RetryPolicy
  /** Metadata request timeout. */
  readonly metadataTimeoutMs?: number
  /** Replaces the metadata client (unit tests). */
  readonly metadata?: GceMetadataSource
}

/** Registry factory: reads the process environment once, here at the edge. */
export function gce(options: GceOptions, deps: BackendDeps): Backend {
  return createGceBackend(options, deps, { env: process.env })
}

export function createGceBackend(options: GceOptions, deps: BackendDeps, runtime: GceRuntime): Backend {
  const log = deps.logger.child({ component: 'backend/gce' })
  return {
    type: 'gce',
    async registerNetwork(config: NetworkConfig, signal: AbortSignal): Promise<Network> {
      const lease = await deps.subnetManager.acquireLease(config, { publicIP: deps.extIface.extAddr, backendType: 'gce' }, signal)
      if (lease.subnet === undefined) throw new WeftError('BACKEND_UNSUPPORTED', 'gce backend needs an IPv4 subnet; GCE routes are IPv4 only')
      const metadata = runtime.metadata ?? new GceMetadata(gceMetadataBase(options.metadataEndpoint, runtime.env), {
        clock: deps.clock, logger: log, ...(runtime.metadataTimeoutMs ? { timeoutMs: runtime.metadataTimeoutMs } : {}),
      })
      const self = await metadata.self(signal)
      const createApi = runtime.createApi ?? (async (c: GceComputeConfig) => (await import('./gce-compute-routes-api.ts')).createGceComputeRoutesApi(c))
      const api = await createApi({
        endpoint: options.computeEndpoint ?? GCE_COMPUTE_DEFAULT_ENDPOINT, metadata, clock: deps.clock, logger: log,
        ...(runtime.retryPolicy ? { retryPolicy: runtime.retryPolicy } : {}),
      })
      const links = await api.resolveSelfLinks(self, signal)
      const desired = desiredGceRoute(lease.subnet, links.networkSelfLink, links.instanceSelfLink)
      await new RouteProgrammer(api, self.project, deps, log, runtime).ensure(desired, signal)
      return { lease, mtu: deps.extIface.mtu, run: untilAborted }
    },
  }
}

/** Applies the plan for one route: keep, create, or delete-then-create. */
class RouteProgrammer {
  constructor(
    private readonly api: ComputeRoutesApi,
    private readonly project: string,
    private readonly deps: BackendDeps,
    private readonly log: Logger,
    private readonly runtime: GceRuntime,
  ) {}

  async ensure(desired: GceRoute, signal: AbortSignal): Promise<void> {
    const existing = await this.api.getRoute(this.project, desired.name, signal)
    const plan = planGceRoute(existing, desired)
    const fields = { route: desired.name, destRange: desired.destRange, nextHop: desired.nextHopInstance }
    if (plan.action === 'keep') {
      this.log.info('route already points at this instance', fields)
      return
    }
    if (plan.action === 'create') await this.checkQuota(desired, signal)
    if (plan.action === 'replace') {
      this.log.warn('replacing route that points elsewhere', { ...fields, reason: plan.reason })
      await this.wait(await this.api.deleteRoute(this.project, desired.name, signal), 'routes.delete', desired.name, signal)
    }
    await this.wait(await this.api.insertRoute(this.project, desired, signal), 'routes.insert', desired.name, signal)
    this.log.info('route created', fields)
  }

  /** Says plainly that the project is full before GCE answers QUOTA_EXCEEDED. */
  private async checkQuota(desired: GceRoute, signal: AbortSignal): Promise<void> {
    const limit = this.runtime.routeLimit ?? GCE_ROUTE_LIMIT
    const existing = (await this.api.listRoutes(this.project, signal)).length
    const err = checkRouteLimit({
      provider: 'gce', scope: `project ${this.project}`, existing, adding: 1, limit, destination: desired.destRange,
      hint: 'ask Google for a higher ROUTES quota (or delete unused routes), or use the vxlan backend for clusters this size',
    })
    if (err) throw err
    if (nearRouteLimit(existing + 1, limit)) this.log.warn('project is close to its route quota', { project: this.project, routes: existing + 1, limit })
  }

  /** Polls a global operation until DONE, at most operationTimeoutMs (flannel: 100 times 1 s). */
  private async wait(op: GceOperation, call: string, resource: string, signal: AbortSignal): Promise<void> {
    const interval = this.runtime.pollIntervalMs ?? 1_000
    const deadline = this.deps.clock.now() + (this.runtime.operationTimeoutMs ?? 100_000)
    for (;;) {
      const status = await op.poll(signal)
      if (status.status === 'DONE') {
        if (status.error) {
          throw new CloudError({ operation: call, resource, cloudCode: status.error.code, cloudMessage: `${status.error.message} (operation ${op.name})`, retryable: false })
        }
        return
      }
      if (this.deps.clock.now() >= deadline) {
        throw new WeftError('CLOUD_API_FAILED', `${call} ${resource}: operation ${op.name} still ${status.status} after ${Math.round((this.runtime.operationTimeoutMs ?? 100_000) / 1000)}s; check the operation in the GCE console and restart`, {
          details: { operation: call, resource, gceOperation: op.name, status: status.status },
        })
      }
      await this.deps.clock.sleep(interval, signal)
    }
  }
}

