/** In-memory RouteTableApi for unit tests: tables in maps, a call log, injectable failures. */
import type { InstanceInfo, RouteOp, RouteTable, RouteTableApi, RouteTableQuery, TableRoute } from '../../../../src/backend/aws-vpc/route-table-api.ts'
import { CloudError } from '../../../../src/backend/cloud/cloud-error.ts'

export interface MemoryTable {
  id: string
  vpcId: string
  main: boolean
  subnets: string[]
  routes: TableRoute[]
}

export class MemoryRouteTableApi implements RouteTableApi {
  readonly calls: string[] = []
  readonly failures = new Map<string, CloudError>()
  closed = false
  constructor(readonly instance: InstanceInfo, readonly tables: MemoryTable[]) {}

  private check(name: string, resource: string): void {
    this.calls.push(`${name} ${resource}`.trim())
    const f = this.failures.get(name)
    if (f) {
      this.failures.delete(name)
      throw f
    }
  }

  private notFound(operation: string, resource: string, code: string): CloudError {
    return new CloudError({ operation, resource, cloudCode: code, cloudMessage: `${resource} does not exist`, httpStatus: 400, retryable: false })
  }

  async describeInstance(id: string): Promise<InstanceInfo> {
    this.check('DescribeInstances', id)
    if (id !== this.instance.id) throw this.notFound('DescribeInstances', id, 'InvalidInstanceID.NotFound')
    return this.instance
  }

  async disableSourceDestCheck(eniId: string): Promise<void> {
    this.check('ModifyNetworkInterfaceAttribute', eniId)
  }

  async describeRouteTables(q: RouteTableQuery): Promise<RouteTable[]> {
    const what = 'ids' in q ? q.ids.join(',') : 'subnetId' in q ? `subnet=${q.subnetId}` : `main vpc=${q.vpcId}`
    this.check('DescribeRouteTables', what)
    if ('ids' in q) {
      return q.ids.map((id) => {
        const t = this.tables.find((x) => x.id === id)
        if (!t) throw this.notFound('DescribeRouteTables', id, 'InvalidRouteTableID.NotFound')
        return this.view(t)
      })
    }
    const match = 'subnetId' in q ? this.tables.filter((t) => t.subnets.includes(q.subnetId)) : this.tables.filter((t) => t.main && t.vpcId === q.vpcId)
    return match.map((t) => this.view(t))
  }

  async changeRoute(op: RouteOp): Promise<void> {
    const name = { create: 'CreateRoute', replace: 'ReplaceRoute', delete: 'DeleteRoute' }[op.kind]
    this.check(name, `${op.tableId} ${op.destination}`)
    const t = this.tables.find((x) => x.id === op.tableId)
    if (!t) throw this.notFound(name, op.tableId, 'InvalidRouteTableID.NotFound')
    const i = t.routes.findIndex((r) => r.destination === op.destination)
    if (op.kind === 'create') {
      if (i >= 0) throw new CloudError({ operation: name, resource: op.tableId, cloudCode: 'RouteAlreadyExists', cloudMessage: 'exists', retryable: false })
      t.routes.push({ destination: op.destination, state: 'active', eniId: op.eniId!, origin: 'CreateRoute' })
    } else if (i < 0) {
      throw this.notFound(name, op.destination, 'InvalidRoute.NotFound')
    } else if (op.kind === 'delete') {
      t.routes.splice(i, 1)
    } else {
      t.routes[i] = { destination: op.destination, state: 'active', eniId: op.eniId!, origin: 'CreateRoute' }
    }
  }

  close(): void {
    this.closed = true
  }

  private view(t: MemoryTable): RouteTable {
    return { id: t.id, vpcId: t.vpcId, routes: t.routes.map((r) => ({ ...r })), otherRouteCount: 0 }
  }
}
