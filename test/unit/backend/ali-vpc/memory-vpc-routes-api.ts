/** In-memory VpcRoutesApi: one VPC, VRouter and table; new entries Pending for N describes; a call log. */
import type { AliRouteEntry, VpcRoutesApi } from '../../../../src/backend/ali-vpc/vpc-routes-api.ts'

export class MemoryVpcRoutesApi implements VpcRoutesApi {
  readonly entries: Array<{ -readonly [K in keyof AliRouteEntry]: AliRouteEntry[K] } & { pending: number }> = []
  readonly calls: string[] = []
  /** Describes a new entry stays Pending; Infinity = forever. */
  pendingDescribes = 1

  async describeVpc(): Promise<{ vRouterId: string }> {
    this.calls.push('describeVpc')
    return { vRouterId: 'vrt-1' }
  }

  async describeVRouter(): Promise<{ routeTableIds: string[] }> {
    this.calls.push('describeVRouter')
    return { routeTableIds: ['vtb-1'] }
  }

  async describeRouteTable(): Promise<AliRouteEntry[]> {
    this.calls.push('describeRouteTable')
    const out = this.entries.map(({ pending, ...e }) => ({ ...e }))
    for (const e of this.entries) if (e.status === 'Pending' && --e.pending < 0) e.status = 'Available'
    return out
  }

  async createRouteEntry(_r: string, _t: string, destination: string, instanceId: string): Promise<void> {
    this.calls.push(`create ${destination}`)
    this.put(destination, instanceId, 'Pending')
  }

  async deleteRouteEntry(_r: string, _t: string, destination: string, nextHopId: string): Promise<void> {
    this.calls.push(`delete ${destination}`)
    const i = this.entries.findIndex((e) => e.destinationCidrBlock === destination && e.instanceId === nextHopId)
    if (i >= 0) this.entries.splice(i, 1)
  }

  put(destination: string, instanceId: string, status = 'Available'): void {
    this.entries.push({ destinationCidrBlock: destination, type: 'Custom', status, nextHopType: 'Instance', instanceId, pending: this.pendingDescribes - 1 })
  }
}
