/**
 * aws-vpc backend: pod traffic is routed by the VPC itself. Each host puts one route
 * `<its lease subnet> → <its own ENI>` into the VPC route table(s); no devices, no peers.
 *
 * Design notes
 * - Order (flannel `backend/awsvpc/awsvpc.go`): acquire the lease, read region and instance id
 *   from IMDS, find the ENI holding the interface address, disable source/dest check on it
 *   (a failure is a warning: the operator may have done it already), pick the tables, then per
 *   table: delete blackhole routes inside the cluster network, and create or correct our route.
 * - Difference from flannel: a correct route is left alone and a wrong one is fixed with
 *   ReplaceRoute. flannel always deleted and recreated it, leaving a window with no route on
 *   every restart.
 * - The quota (50 routes per table by default) is checked before adding, so the operator reads
 *   how many routes exist, the limit and what to do, rather than the API's RouteLimitExceeded.
 * - All EC2 access goes through RouteTableApi; the SDK is loaded only when this backend runs.
 *   Region comes from IMDS, credentials and endpoint from the SDK's own configuration.
 * - IPv4 only, as in flannel. run() has nothing to do per peer: it only waits for the signal.
 */
import { WeftError } from '../../errors.ts'
import { formatCidr, formatIp } from '../../ip/ip.ts'
import type { IpNet } from '../../ip/ip.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { Lease } from '../../lease/lease.ts'
import type { Logger } from '../../log/logger.ts'
import type { Backend, BackendDeps, Network } from '../backend.ts'
import { CloudError } from '../cloud/cloud-error.ts'
import { checkRouteLimit, nearRouteLimit } from '../cloud/route-limit.ts'
import { defaultRetryPolicy } from '../cloud/retry.ts'
import type { RetryPolicy } from '../cloud/retry.ts'
import type { AwsVpcOptions } from './aws-vpc-options.ts'
import { createImds } from './imds.ts'
import type { Imds } from './imds.ts'
import { planRouteTable } from './plan.ts'
import type { Eni, RouteOp, RouteTable, RouteTableApi } from './route-table-api.ts'
import { untilAborted } from '../../util/abort.ts'

/** Effects the backend needs; tests pass fakes, production uses IMDS and the SDK. */
export interface AwsVpcEnv {
  readonly imds: Imds
  /** Builds the EC2 API for the region read from IMDS. */
  connect(region: string): Promise<RouteTableApi>
  /** Backoff for throttled / failed calls (IMDS and EC2); defaults to `defaultRetryPolicy`. */
  readonly retryPolicy: RetryPolicy
}

export const BACKEND_TYPE = 'aws-vpc'

/** The backend factory (registry's `load()` result). */
export function awsVpc(options: AwsVpcOptions, deps: BackendDeps, env?: Partial<AwsVpcEnv>): Backend {
  const log = deps.logger.child({ component: 'backend/aws-vpc' })
  const retryPolicy = env?.retryPolicy ?? defaultRetryPolicy
  const imds = env?.imds ?? createImds({ logger: log, clock: deps.clock, retryPolicy: { ...retryPolicy, maxAttempts: Math.min(3, retryPolicy.maxAttempts) } })
  const connect =
    env?.connect ??
    (async (region: string) => (await import('./ec2-route-table-api.ts')).createEc2RouteTableApi({ region, logger: log, clock: deps.clock, retryPolicy }))

  return {
    type: BACKEND_TYPE,
    async registerNetwork(config: NetworkConfig, signal: AbortSignal): Promise<Network> {
      const network = config.ipv4?.network
      if (!config.enableIPv4 || network === undefined) {
        throw new WeftError('BACKEND_UNSUPPORTED', 'aws-vpc routes IPv4 only: set EnableIPv4 in the network config')
      }
      if (config.enableIPv6) log.warn('aws-vpc programs no IPv6 routes; IPv6 pod traffic needs another backend')
      const ifaceAddr = deps.extIface.ifaceAddr
      if (ifaceAddr === undefined) throw new WeftError('BACKEND_UNSUPPORTED', `interface ${deps.extIface.name} has no IPv4 address for aws-vpc`)

      const lease = await deps.subnetManager.acquireLease(config, { publicIP: deps.extIface.extAddr, backendType: BACKEND_TYPE }, signal)
      const subnet = lease.subnet
      if (subnet === undefined) throw new WeftError('LEASE_INVALID', 'aws-vpc lease has no IPv4 subnet')

      const { region, instanceId } = await imds.identity(signal)
      log.info('instance identity', { region, instanceId })
      const api = await connect(region)
      try {
        await programInstance(api, { instanceId, ip: formatIp(ifaceAddr), network, subnet, options }, log, signal)
      } finally {
        // nothing talks to EC2 after registration: free the SDK's sockets
        api.close?.()
      }
      return makeNetwork(lease, deps.extIface.mtu)
    },
  }
}

interface InstanceTarget {
  readonly instanceId: string
  /** The external interface's address, to find our ENI by. */
  readonly ip: string
  readonly network: IpNet
  readonly subnet: IpNet
  readonly options: AwsVpcOptions
}

/** ENI lookup, source/dest check, table choice, then every table (flannel's order). */
async function programInstance(api: RouteTableApi, t: InstanceTarget, log: Logger, signal: AbortSignal): Promise<void> {
  const instance = await api.describeInstance(t.instanceId, signal)
  const eni = instance.enis.find((n) => n.privateIps.includes(t.ip))
  if (eni === undefined) {
    throw new WeftError('BACKEND_UNSUPPORTED', `no network interface of instance ${t.instanceId} holds the interface address ${t.ip}`, {
      details: { instanceId: t.instanceId, ifaceAddr: t.ip },
    })
  }
  log.info('network interface found', { eni: eni.id, subnetId: eni.subnetId, ifaceAddr: t.ip })
  await ensureSourceDestCheckOff(api, eni, log, signal)

  const tableIds = t.options.routeTableIds.length > 0 ? t.options.routeTableIds : [await detectRouteTable(api, instance.vpcId, eni.subnetId, log, signal)]
  for (const tableId of tableIds) {
    await programTable(api, { tableId, network: t.network, subnet: t.subnet, eniId: eni.id, routeLimit: t.options.routeLimit }, log, signal)
  }
}

/** Forwarding pod traffic needs source/dest check off; skip the call when EC2 says it is off. */
async function ensureSourceDestCheckOff(api: RouteTableApi, eni: Eni, log: Logger, signal: AbortSignal): Promise<void> {
  if (!eni.sourceDestCheck) {
    log.debug('source/dest check already disabled', { eni: eni.id })
    return
  }
  try {
    await api.disableSourceDestCheck(eni.id, signal)
    log.info('source/dest check disabled', { eni: eni.id })
  } catch (err) {
    if (signal.aborted) throw err
    // flannel carries on too: the operator may manage the attribute (and IAM) elsewhere
    log.warn('could not disable source/dest check; pod traffic to this host may be dropped', { eni: eni.id }, err)
  }
}

/** The ENI subnet's associated table, else the VPC's main table (flannel's order). */
async function detectRouteTable(api: RouteTableApi, vpcId: string, subnetId: string, log: Logger, signal: AbortSignal): Promise<string> {
  const associated = await api.describeRouteTables({ subnetId }, signal)
  if (associated[0] !== undefined) {
    log.info('route table detected', { routeTable: associated[0].id, via: 'subnet association', subnetId })
    return associated[0].id
  }
  const main = await api.describeRouteTables({ vpcId, main: true }, signal)
  if (main[0] !== undefined) {
    log.info('route table detected', { routeTable: main[0].id, via: 'main table', vpcId })
    return main[0].id
  }
  throw new WeftError('CLOUD_API_FAILED', `main route table not found: subnet ${subnetId} has no associated table and VPC ${vpcId} has no main table; set Backend.RouteTableID`, {
    details: { vpcId, subnetId },
  })
}

interface TableTarget {
  readonly tableId: string
  readonly network: IpNet
  readonly subnet: IpNet
  readonly eniId: string
  readonly routeLimit: number
}

function limitHint(limit: number): string {
  return `ask AWS to raise the "Routes per route table" quota (up to 1000) and set Backend.RouteLimit to it (now ${limit}), ` +
    'spread hosts over several route tables, or use the vxlan or host-gw backend for clusters this large'
}

async function programTable(api: RouteTableApi, t: TableTarget, log: Logger, signal: AbortSignal): Promise<void> {
  const table = await describeOne(api, t.tableId, signal)
  const plan = planRouteTable({ table, network: t.network, subnet: t.subnet, eniId: t.eniId })
  const fields = { routeTable: t.tableId, subnet: formatCidr(t.subnet), eni: t.eniId }

  for (const op of plan.deletes) {
    await tolerate(api.changeRoute(op, signal), 'InvalidRoute.NotFound')
    log.info('blackhole route deleted', { routeTable: t.tableId, destination: op.destination })
  }
  if (plan.upsert === undefined) {
    log.info('route already correct', fields)
    return
  }
  const adding = plan.upsert.kind === 'create' ? 1 : 0
  const scope = `route table ${t.tableId}`
  const limitErr = checkRouteLimit({
    provider: 'aws', scope, existing: plan.countAfterDeletes, adding, limit: t.routeLimit, destination: fields.subnet, hint: limitHint(t.routeLimit),
  })
  if (limitErr) throw limitErr
  if (nearRouteLimit(plan.countAfterDeletes + adding, t.routeLimit)) {
    log.warn('route table is close to its route limit', { routeTable: t.tableId, routes: plan.countAfterDeletes + adding, limit: t.routeLimit })
  }
  try {
    await upsert(api, plan.upsert, signal)
  } catch (err) {
    if (err instanceof CloudError && err.cloudCode === 'RouteLimitExceeded') {
      throw new WeftError('CLOUD_ROUTE_LIMIT', `${scope} refused the route for ${fields.subnet} (${err.message}); the table's quota is lower than Backend.RouteLimit ${t.routeLimit}: ${limitHint(t.routeLimit)}`, {
        details: { routeTable: t.tableId, limit: t.routeLimit }, cause: err,
      })
    }
    throw err
  }
  log.info(plan.upsert.kind === 'create' ? 'route created' : 'route corrected', { ...fields, reason: plan.reason })
}

async function describeOne(api: RouteTableApi, tableId: string, signal: AbortSignal): Promise<RouteTable> {
  const [table] = await api.describeRouteTables({ ids: [tableId] }, signal)
  if (table === undefined) {
    throw new CloudError({ operation: 'DescribeRouteTables', resource: tableId, cloudCode: 'InvalidRouteTableID.NotFound', cloudMessage: 'the table is not in the reply', retryable: false })
  }
  return table
}

/** Create, falling back to replace when another writer got there first (and vice versa). */
async function upsert(api: RouteTableApi, op: RouteOp, signal: AbortSignal): Promise<void> {
  try {
    await api.changeRoute(op, signal)
  } catch (err) {
    if (!(err instanceof CloudError)) throw err
    if (op.kind === 'create' && err.cloudCode === 'RouteAlreadyExists') return api.changeRoute({ ...op, kind: 'replace' }, signal)
    if (op.kind === 'replace' && err.cloudCode === 'InvalidRoute.NotFound') return api.changeRoute({ ...op, kind: 'create' }, signal)
    throw err
  }
}

async function tolerate(p: Promise<void>, cloudCode: string): Promise<void> {
  try {
    await p
  } catch (err) {
    if (!(err instanceof CloudError && err.cloudCode === cloudCode)) throw err
  }
}

function makeNetwork(lease: Lease, mtu: number): Network {
  return {
    lease,
    mtu,
    // flannel's aws-vpc handles no peer events: the VPC routes between hosts.
    run: untilAborted,
  }
}

