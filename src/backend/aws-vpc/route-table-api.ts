/**
 * The slice of EC2 the aws-vpc backend needs, as plain values: small enough to fake in unit
 * tests, and the only seam between the backend logic and the SDK (ec2-route-table-api.ts).
 */

/** One network interface (ENI) attached to the instance. */
export interface Eni {
  readonly id: string
  readonly subnetId: string
  /** Every private IPv4 address on the ENI (primary and secondary). */
  readonly privateIps: readonly string[]
  readonly sourceDestCheck: boolean
}

export interface InstanceInfo {
  readonly id: string
  readonly vpcId: string
  readonly subnetId: string
  readonly enis: readonly Eni[]
}

/** A route as EC2 reports it; only IPv4 destination routes are returned. */
export interface TableRoute {
  readonly destination: string
  /** `active`, or `blackhole` when the target (ENI, instance, gateway) is gone. */
  readonly state: 'active' | 'blackhole'
  readonly eniId?: string
  readonly instanceId?: string
  /** `local`, `igw-…`, `vgw-…`; set for gateway targets. */
  readonly gatewayId?: string
  /** Any other target kind (NAT gateway, peering, transit gateway), as its id. */
  readonly otherTarget?: string
  /** `CreateRouteTable` (the local route), `CreateRoute`, or `EnableVgwRoutePropagation`. */
  readonly origin: string
}

export interface RouteTable {
  readonly id: string
  readonly vpcId: string
  readonly routes: readonly TableRoute[]
  /** Routes not shown in `routes` (IPv6, prefix lists) that still count against the quota. */
  readonly otherRouteCount: number
}

/** Which tables to describe: by id, by subnet association, or the VPC's main table. */
export type RouteTableQuery =
  | { readonly ids: readonly string[] }
  | { readonly subnetId: string }
  | { readonly vpcId: string; readonly main: true }

/** One change to one table; `replace` swaps the target in place (EC2 ReplaceRoute). */
export interface RouteOp {
  readonly kind: 'create' | 'replace' | 'delete'
  readonly tableId: string
  readonly destination: string
  /** Target ENI for create/replace. */
  readonly eniId?: string
}

export interface RouteTableApi {
  /** DescribeInstances for one id. */
  describeInstance(instanceId: string, signal: AbortSignal): Promise<InstanceInfo>
  /** ModifyNetworkInterfaceAttribute SourceDestCheck=false: the ENI forwards pod traffic. */
  disableSourceDestCheck(eniId: string, signal: AbortSignal): Promise<void>
  /** DescribeRouteTables; unknown ids reject with InvalidRouteTableID.NotFound. */
  describeRouteTables(query: RouteTableQuery, signal: AbortSignal): Promise<RouteTable[]>
  /** CreateRoute / ReplaceRoute / DeleteRoute. */
  changeRoute(op: RouteOp, signal: AbortSignal): Promise<void>
  /** Releases connections; aws-vpc calls it once the tables are programmed. */
  close?(): void
}
