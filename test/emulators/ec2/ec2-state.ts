/**
 * State of the EC2 emulator: one VPC with subnets, instances with ENIs, and route tables with
 * routes. Operations check what EC2 checks and throw Ec2Fault with EC2's own error codes.
 */
import { randomBytes } from 'node:crypto'

export class Ec2Fault extends Error {
  constructor(readonly code: string, message: string, readonly status = 400) {
    super(message)
  }
}

export interface EmuEni { id: string; subnetId: string; privateIps: string[]; sourceDestCheck: boolean }
export interface EmuInstance { id: string; subnetId: string; eniIds: string[] }
export interface EmuRoute {
  destination: string
  eniId?: string
  instanceId?: string
  gatewayId?: string
  origin: 'CreateRouteTable' | 'CreateRoute' | 'EnableVgwRoutePropagation'
}
export interface EmuRouteTable { id: string; main: boolean; subnetIds: string[]; routes: EmuRoute[] }

/** A fresh hex id with EC2's prefix and 17-digit suffix. */
export const newId = (prefix: string): string => `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/

export class Ec2State {
  readonly vpcId = newId('vpc')
  readonly vpcCidr: string
  readonly ownerId = '123456789012'
  subnets: string[] = []
  enis = new Map<string, EmuEni>()
  instances = new Map<string, EmuInstance>()
  tables = new Map<string, EmuRouteTable>()
  /** Routes per table (non-propagated, excluding the local route), as the default AWS quota. */
  routeLimit = 50

  constructor(vpcCidr = '172.31.0.0/16') {
    this.vpcCidr = vpcCidr
  }

  addSubnet(): string {
    const id = newId('subnet')
    this.subnets.push(id)
    return id
  }

  /** An instance with one ENI per address list given (first is the primary ENI). */
  addInstance(subnetId: string, ...ipsPerEni: string[][]): EmuInstance {
    const inst: EmuInstance = { id: newId('i'), subnetId, eniIds: [] }
    for (const ips of ipsPerEni) {
      const eni: EmuEni = { id: newId('eni'), subnetId, privateIps: ips, sourceDestCheck: true }
      this.enis.set(eni.id, eni)
      inst.eniIds.push(eni.id)
    }
    this.instances.set(inst.id, inst)
    return inst
  }

  /** A route table with its local route; `main` makes it the VPC's main table. */
  addTable(options: { main?: boolean; subnetIds?: string[] } = {}): EmuRouteTable {
    const t: EmuRouteTable = {
      id: newId('rtb'), main: options.main ?? false, subnetIds: options.subnetIds ?? [],
      routes: [{ destination: this.vpcCidr, gatewayId: 'local', origin: 'CreateRouteTable' }],
    }
    this.tables.set(t.id, t)
    return t
  }

  /** Deletes an ENI: routes to it turn into blackholes, as in EC2. */
  deleteEni(id: string): void {
    this.enis.delete(id)
  }

  routeState(r: EmuRoute): 'active' | 'blackhole' {
    if (r.eniId !== undefined) return this.enis.has(r.eniId) ? 'active' : 'blackhole'
    if (r.instanceId !== undefined) return this.instances.has(r.instanceId) ? 'active' : 'blackhole'
    return 'active'
  }

  instance(id: string): EmuInstance {
    if (!/^i-[0-9a-f]+$/.test(id)) throw new Ec2Fault('InvalidInstanceID.Malformed', `Invalid id: "${id}"`)
    const inst = this.instances.get(id)
    if (!inst) throw new Ec2Fault('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`)
    return inst
  }

  eni(id: string): EmuEni {
    if (!/^eni-[0-9a-f]+$/.test(id)) throw new Ec2Fault('InvalidNetworkInterfaceID.Malformed', `Invalid id: "${id}"`)
    const eni = this.enis.get(id)
    if (!eni) throw new Ec2Fault('InvalidNetworkInterfaceID.NotFound', `The networkInterface ID '${id}' does not exist`)
    return eni
  }

  table(id: string): EmuRouteTable {
    if (!/^rtb-[0-9a-f]+$/.test(id)) throw new Ec2Fault('InvalidRouteTableId.Malformed', `Invalid id: "${id}"`)
    const t = this.tables.get(id)
    if (!t) throw new Ec2Fault('InvalidRouteTableID.NotFound', `The routeTable ID '${id}' does not exist`)
    return t
  }

  createRoute(tableId: string, destination: string, target: { eniId?: string; instanceId?: string; gatewayId?: string }): void {
    const t = this.table(tableId)
    checkCidr(destination)
    const resolved = this.resolveTarget(target)
    if (t.routes.some((r) => r.destination === destination)) {
      throw new Ec2Fault('RouteAlreadyExists', `The route identified by ${destination} already exists.`)
    }
    const counted = t.routes.filter((r) => r.origin === 'CreateRoute').length
    if (counted >= this.routeLimit) {
      throw new Ec2Fault('RouteLimitExceeded', `The maximum number of routes has been reached for route table ${tableId}. Limit: ${this.routeLimit}`)
    }
    t.routes.push({ destination, origin: 'CreateRoute', ...resolved })
  }

  replaceRoute(tableId: string, destination: string, target: { eniId?: string; instanceId?: string; gatewayId?: string }): void {
    const t = this.table(tableId)
    checkCidr(destination)
    const resolved = this.resolveTarget(target)
    const i = t.routes.findIndex((r) => r.destination === destination)
    if (i < 0) throw new Ec2Fault('InvalidRoute.NotFound', `There is no route defined for '${destination}' in the route table. Use CreateRoute instead.`)
    if (t.routes[i]!.origin === 'CreateRouteTable') throw new Ec2Fault('InvalidParameterValue', `cannot replace local route ${destination} in route table ${tableId}`)
    t.routes[i] = { destination, origin: 'CreateRoute', ...resolved }
  }

  deleteRoute(tableId: string, destination: string): void {
    const t = this.table(tableId)
    checkCidr(destination)
    const i = t.routes.findIndex((r) => r.destination === destination)
    if (i < 0) throw new Ec2Fault('InvalidRoute.NotFound', `no route with destination-cidr-block ${destination} in route table ${tableId}`)
    if (t.routes[i]!.origin === 'CreateRouteTable') throw new Ec2Fault('InvalidParameterValue', `cannot remove local route ${destination} in route table ${tableId}`)
    t.routes.splice(i, 1)
  }

  private resolveTarget(target: { eniId?: string; instanceId?: string; gatewayId?: string }): Partial<EmuRoute> {
    const given = [target.eniId, target.instanceId, target.gatewayId].filter((x) => x !== undefined)
    if (given.length !== 1) throw new Ec2Fault('InvalidParameterCombination', 'The parameter combination is not valid: exactly one route target must be given')
    if (target.eniId !== undefined) return { eniId: this.eni(target.eniId).id }
    if (target.instanceId !== undefined) {
      const inst = this.instance(target.instanceId)
      return { instanceId: inst.id, eniId: inst.eniIds[0]! }
    }
    return { gatewayId: target.gatewayId! }
  }
}

function checkCidr(cidr: string): void {
  const m = CIDR.exec(cidr)
  const ok = m !== null && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32
  if (!ok) throw new Ec2Fault('InvalidParameterValue', `Value (${cidr}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block.`)
}
