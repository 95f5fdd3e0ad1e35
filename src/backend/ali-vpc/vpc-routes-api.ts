/**
 * The slice of Alibaba Cloud's VPC API (version 2016-04-28) the ali-vpc backend needs, as
 * plain data. The pop-core implementation (ali-vpc-routes-api.ts) is the only module that
 * talks to Alibaba; tests point it at a local emulator.
 */

/** One entry of a VRouter route table, as DescribeRouteTables returns it. */
export interface AliRouteEntry {
  readonly destinationCidrBlock: string
  /** `Custom` (user-made) or `System` (VSwitch CIDRs, 100.64.0.0/10). */
  readonly type: string
  /** `Available`, `Pending`, `Modifying`, `Deleting`. */
  readonly status: string
  readonly nextHopType: string
  /** Next hop id (`i-...` for an ECS instance); '' when none. */
  readonly instanceId: string
}

/** VPC route calls, five of them. Every failure is a CloudError naming the action and resource. */
export interface VpcRoutesApi {
  /** DescribeVpcs: the VRouter of this VPC. */
  describeVpc(regionId: string, vpcId: string, signal: AbortSignal): Promise<{ readonly vRouterId: string }>
  /** DescribeVRouters: the route tables of the VRouter (the first is the system table). */
  describeVRouter(regionId: string, vRouterId: string, signal: AbortSignal): Promise<{ readonly routeTableIds: readonly string[] }>
  /** DescribeRouteTables: every entry of one table. */
  describeRouteTable(regionId: string, vRouterId: string, routeTableId: string, signal: AbortSignal): Promise<readonly AliRouteEntry[]>
  /** CreateRouteEntry with NextHopType=Instance; the entry starts out Pending. */
  createRouteEntry(regionId: string, routeTableId: string, destination: string, instanceId: string, signal: AbortSignal): Promise<void>
  /** DeleteRouteEntry of the entry for `destination` via `nextHopId`. */
  deleteRouteEntry(regionId: string, routeTableId: string, destination: string, nextHopId: string, signal: AbortSignal): Promise<void>
}
