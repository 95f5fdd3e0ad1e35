/**
 * The EC2 Query API subset (Version 2016-11-15) the aws-vpc backend uses: form-encoded
 * requests in, XML replies out, in the shapes and with the error codes of the real service.
 */
import { randomUUID } from 'node:crypto'
import { Ec2Fault } from './ec2-state.ts'
import type { Ec2State, EmuRouteTable } from './ec2-state.ts'

export const EC2_VERSION = '2016-11-15'
const XMLNS = `http://ec2.amazonaws.com/doc/${EC2_VERSION}/`

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')
const el = (name: string, body: string | undefined): string => (body === undefined ? '' : `<${name}>${body}</${name}>`)
const text = (name: string, value: string | boolean | number | undefined): string => (value === undefined ? '' : el(name, esc(String(value))))
const items = (name: string, bodies: string[]): string => el(name, bodies.map((b) => `<item>${b}</item>`).join(''))

/** `Prefix.1`, `Prefix.2`, … in order. */
export function listParam(p: URLSearchParams, prefix: string): string[] {
  const out: string[] = []
  for (let i = 1; p.has(`${prefix}.${i}`); i++) out.push(p.get(`${prefix}.${i}`)!)
  return out
}

function filters(p: URLSearchParams): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (let i = 1; p.has(`Filter.${i}.Name`); i++) out.set(p.get(`Filter.${i}.Name`)!, listParam(p, `Filter.${i}.Value`))
  return out
}

function required(p: URLSearchParams, name: string): string {
  const v = p.get(name)
  if (v === null || v === '') throw new Ec2Fault('MissingParameter', `The request must contain the parameter ${name[0]!.toLowerCase()}${name.slice(1)}`)
  return v
}

function response(action: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${XMLNS}">${text('requestId', randomUUID())}${body}</${action}Response>`
}

/** The real EC2 error document. */
export function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>${text('Code', code)}${text('Message', message)}</Error></Errors>${text('RequestID', randomUUID())}</Response>`
}

type Handler = (state: Ec2State, p: URLSearchParams) => string

const describeInstances: Handler = (s, p) => {
  const ids = listParam(p, 'InstanceId')
  const insts = ids.length > 0 ? ids.map((id) => s.instance(id)) : [...s.instances.values()]
  const reservations = insts.map((inst) => {
    const enis = inst.eniIds.filter((id) => s.enis.has(id)).map((id, index) => {
      const eni = s.enis.get(id)!
      return text('networkInterfaceId', eni.id) + text('subnetId', eni.subnetId) + text('vpcId', s.vpcId) + text('ownerId', s.ownerId) +
        text('status', 'in-use') + text('privateIpAddress', eni.privateIps[0]) + text('sourceDestCheck', eni.sourceDestCheck) +
        el('attachment', text('attachmentId', `eni-attach-${eni.id.slice(4)}`) + text('deviceIndex', index) + text('status', 'attached')) +
        items('privateIpAddressesSet', eni.privateIps.map((ip, i) => text('privateIpAddress', ip) + text('primary', i === 0)))
    })
    const primary = s.enis.get(inst.eniIds[0] ?? '')
    const instance = text('instanceId', inst.id) + text('imageId', 'ami-0123456789abcdef0') +
      el('instanceState', text('code', 16) + text('name', 'running')) + text('instanceType', 't3.medium') +
      text('privateIpAddress', primary?.privateIps[0]) + text('subnetId', inst.subnetId) + text('vpcId', s.vpcId) +
      text('sourceDestCheck', primary?.sourceDestCheck ?? true) + items('networkInterfaceSet', enis)
    return text('reservationId', `r-${inst.id.slice(2)}`) + text('ownerId', s.ownerId) + items('instancesSet', [instance])
  })
  return response('DescribeInstances', items('reservationSet', reservations))
}

const modifyNetworkInterfaceAttribute: Handler = (s, p) => {
  const eni = s.eni(required(p, 'NetworkInterfaceId'))
  const value = p.get('SourceDestCheck.Value')
  if (value === null) throw new Ec2Fault('MissingParameter', 'The request must contain exactly one attribute to modify')
  if (value !== 'true' && value !== 'false') throw new Ec2Fault('InvalidParameterValue', `Value (${value}) for parameter sourceDestCheck is invalid`)
  eni.sourceDestCheck = value === 'true'
  return response('ModifyNetworkInterfaceAttribute', text('return', true))
}

const ROUTE_TABLE_FILTERS = new Set(['association.subnet-id', 'association.main', 'vpc-id', 'route-table-id', 'route.state', 'route.destination-cidr-block'])

const describeRouteTables: Handler = (s, p) => {
  const ids = listParam(p, 'RouteTableId')
  const fs = filters(p)
  for (const name of fs.keys()) if (!ROUTE_TABLE_FILTERS.has(name)) throw new Ec2Fault('InvalidParameterValue', `The filter '${name}' is invalid`)
  let tables = ids.length > 0 ? ids.map((id) => s.table(id)) : [...s.tables.values()]
  const match = (name: string, pred: (t: EmuRouteTable, v: string) => boolean): void => {
    const values = fs.get(name)
    if (values) tables = tables.filter((t) => values.some((v) => pred(t, v)))
  }
  match('association.subnet-id', (t, v) => t.subnetIds.includes(v))
  match('association.main', (t, v) => String(t.main) === v)
  match('vpc-id', (_t, v) => v === s.vpcId)
  match('route-table-id', (t, v) => t.id === v)
  match('route.state', (t, v) => t.routes.some((r) => s.routeState(r) === v))
  match('route.destination-cidr-block', (t, v) => t.routes.some((r) => r.destination === v))
  const body = tables.map((t) => {
    const routes = t.routes.map((r) =>
      text('destinationCidrBlock', r.destination) + text('gatewayId', r.gatewayId) + text('instanceId', r.instanceId) +
      text('instanceOwnerId', r.instanceId === undefined ? undefined : s.ownerId) + text('networkInterfaceId', r.eniId) +
      text('state', s.routeState(r)) + text('origin', r.origin))
    const assocs = [
      ...(t.main ? [text('routeTableAssociationId', `rtbassoc-${t.id.slice(4)}`) + text('routeTableId', t.id) + text('main', true) + el('associationState', text('state', 'associated'))] : []),
      ...t.subnetIds.map((sub) => text('routeTableAssociationId', `rtbassoc-${sub.slice(7)}`) + text('routeTableId', t.id) + text('subnetId', sub) + text('main', false) + el('associationState', text('state', 'associated'))),
    ]
    return text('routeTableId', t.id) + text('vpcId', s.vpcId) + text('ownerId', s.ownerId) + items('routeSet', routes) + items('associationSet', assocs) + '<propagatingVgwSet/><tagSet/>'
  })
  return response('DescribeRouteTables', items('routeTableSet', body))
}

function target(p: URLSearchParams): { eniId?: string; instanceId?: string; gatewayId?: string } {
  const out: { eniId?: string; instanceId?: string; gatewayId?: string } = {}
  if (p.get('NetworkInterfaceId')) out.eniId = p.get('NetworkInterfaceId')!
  if (p.get('InstanceId')) out.instanceId = p.get('InstanceId')!
  if (p.get('GatewayId')) out.gatewayId = p.get('GatewayId')!
  return out
}

const createRoute: Handler = (s, p) => {
  s.createRoute(required(p, 'RouteTableId'), required(p, 'DestinationCidrBlock'), target(p))
  return response('CreateRoute', text('return', true))
}
const replaceRoute: Handler = (s, p) => {
  s.replaceRoute(required(p, 'RouteTableId'), required(p, 'DestinationCidrBlock'), target(p))
  return response('ReplaceRoute', text('return', true))
}
const deleteRoute: Handler = (s, p) => {
  s.deleteRoute(required(p, 'RouteTableId'), required(p, 'DestinationCidrBlock'))
  return response('DeleteRoute', text('return', true))
}

export const HANDLERS: Readonly<Record<string, Handler>> = {
  DescribeInstances: describeInstances,
  ModifyNetworkInterfaceAttribute: modifyNetworkInterfaceAttribute,
  DescribeRouteTables: describeRouteTables,
  CreateRoute: createRoute,
  ReplaceRoute: replaceRoute,
  DeleteRoute: deleteRoute,
}
