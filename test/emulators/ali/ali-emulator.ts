/**
 * A local Alibaba Cloud VPC API + ECS metadata service for tests. It speaks the real RPC
 * protocol (Action/Format/Version/AccessKeyId/SignatureMethod/SignatureVersion/SignatureNonce/
 * Timestamp/Signature, GET query or POST form) and verifies the HMAC-SHA1 signature, nonce
 * reuse and clock skew; replies are JSON in the real shapes with a RequestId, errors carry
 * real codes (MissingX, InvalidVpcId.NotFound, SignatureDoesNotMatch, Throttling, ...).
 * State: one region, VPC, VRouter, route table (with its System entries) and instances.
 * Metadata: /latest/meta-data/{region-id,instance-id,vpc-id}. Listens on 127.0.0.1, port 0.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHmac, randomUUID } from 'node:crypto'

export interface AliEntryRecord {
  DestinationCidrBlock: string
  Type: 'Custom' | 'System'
  Status: 'Pending' | 'Available'
  NextHopType: string
  InstanceId: string
  /** Describe calls left before a Pending entry turns Available. */
  pendingPolls: number
}

export interface AliCall {
  readonly action: string
  readonly method: string
  readonly params: Readonly<Record<string, string>>
}

interface Fault { action: string; status: number; code: string; message: string; remaining: number }

export class AliEmulator {
  readonly regionId = 'cn-hangzhou'
  readonly vpcId = 'vpc-bp1weft0emulator'
  readonly vRouterId = 'vrt-bp1weft0emulator'
  readonly routeTableId = 'vtb-bp1weft0emulator'
  readonly instanceId = 'i-bp1node1'
  readonly accessKeyId = 'LTAI5tEmulatorKey'
  readonly accessKeySecret = 'emulator-secret-value'
  readonly instances = new Set<string>(['i-bp1node1', 'i-bp1node2', 'i-bp1node3'])
  readonly entries: AliEntryRecord[] = [
    { DestinationCidrBlock: '100.64.0.0/10', Type: 'System', Status: 'Available', NextHopType: 'service', InstanceId: '', pendingPolls: 0 },
    { DestinationCidrBlock: '192.168.0.0/24', Type: 'System', Status: 'Available', NextHopType: 'local', InstanceId: '', pendingPolls: 0 },
  ]
  readonly calls: AliCall[] = []
  /** Custom entries allowed in the table (Alibaba's default 50). */
  routeQuota = 50
  /** Describe calls a new entry stays Pending. */
  pendingPolls = 1
  private faults: Fault[] = []
  private nonces = new Set<string>()
  private server!: Server
  url = ''

  static async start(): Promise<AliEmulator> {
    const emu = new AliEmulator()
    emu.server = createServer((req, res) => void emu.handle(req, res))
    await new Promise<void>((resolve) => emu.server.listen(0, '127.0.0.1', resolve))
    emu.url = `http://127.0.0.1:${(emu.server.address() as AddressInfo).port}`
    return emu
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** Adds a custom entry directly (test setup). */
  putEntry(destination: string, instanceId: string, status: 'Pending' | 'Available' = 'Available'): void {
    this.entries.push({ DestinationCidrBlock: destination, Type: 'Custom', Status: status, NextHopType: 'Instance', InstanceId: instanceId, pendingPolls: this.pendingPolls })
  }

  custom(): AliEntryRecord[] { return this.entries.filter((e) => e.Type === 'Custom') }

  /** The next `times` calls of `action` fail with this error. */
  failNext(action: string, status: number, code: string, message: string, times = 1): void {
    this.faults.push({ action, status, code, message, remaining: times })
  }

  /** Actions that change state, as `Action DestinationCidrBlock` strings. */
  mutations(): string[] {
    return this.calls.filter((c) => /^(Create|Delete)/.test(c.action)).map((c) => `${c.action} ${c.params['DestinationCidrBlock'] ?? ''}`)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x')
    const body = await readBody(req)
    if (url.pathname.startsWith('/latest/meta-data/')) return this.metadata(url.pathname.slice('/latest/meta-data/'.length), res)
    if (url.pathname !== '/') return send(res, 404, { RequestId: rid(), Code: 'InvalidAction.NotFound', Message: `Specified api is not found, please check your url and method.` })
    const method = req.method ?? 'GET'
    const source = method === 'POST' ? new URLSearchParams(body) : url.searchParams
    const params: Record<string, string> = {}
    for (const [k, v] of source) params[k] = v
    const action = params['Action'] ?? ''
    this.calls.push({ action, method, params })
    const authError = this.checkAuth(method, params)
    if (authError) return send(res, authError.status, { RequestId: rid(), HostId: 'vpc.aliyuncs.com', Code: authError.code, Message: authError.message, Recommend: 'https://api.aliyun.com/troubleshoot' })
    const fault = this.faults.find((f) => f.action === action)
    if (fault) {
      if (--fault.remaining <= 0) this.faults = this.faults.filter((f) => f !== fault)
      return send(res, fault.status, { RequestId: rid(), HostId: 'vpc.aliyuncs.com', Code: fault.code, Message: fault.message })
    }
    try {
      send(res, 200, { RequestId: rid(), ...this.dispatch(action, params) })
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      send(res, err.status, { RequestId: rid(), HostId: 'vpc.aliyuncs.com', Code: err.code, Message: err.message, Recommend: 'https://api.aliyun.com/troubleshoot' })
    }
  }

  private metadata(key: string, res: ServerResponse): void {
    const values: Record<string, string> = { 'region-id': this.regionId, 'instance-id': this.instanceId, 'vpc-id': this.vpcId }
    const value = values[key]
    res.writeHead(value === undefined ? 404 : 200, { 'content-type': 'text/plain' }).end(value ?? 'Not Found')
  }

  /** What the real gateway checks before the action runs. */
  private checkAuth(method: string, p: Record<string, string>): { status: number; code: string; message: string } | undefined {
    for (const name of ['Action', 'Format', 'Version', 'AccessKeyId', 'SignatureMethod', 'SignatureVersion', 'SignatureNonce', 'Timestamp', 'Signature']) {
      if (!p[name]) return { status: 400, code: `Missing${name}`, message: `${name} is mandatory for this action.` }
    }
    if (p['Version'] !== '2016-04-28') return { status: 400, code: 'InvalidVersion', message: `Specified parameter Version is not valid.` }
    if (p['SignatureMethod'] !== 'HMAC-SHA1') return { status: 400, code: 'InvalidSignatureMethod', message: 'Specified signature method is not supported.' }
    if (p['AccessKeyId'] !== this.accessKeyId) return { status: 404, code: 'InvalidAccessKeyId.NotFound', message: 'Specified access key is not found.' }
    const { Signature: signature, ...rest } = p
    if (sign(method, rest, this.accessKeySecret) !== signature) {
      return { status: 400, code: 'SignatureDoesNotMatch', message: 'Specified signature is not matched with our calculation.' }
    }
    if (Math.abs(Date.parse(p['Timestamp']!) - Date.now()) > 15 * 60_000) return { status: 400, code: 'InvalidTimeStamp.Expired', message: 'Specified time stamp or date value is expired.' }
    if (this.nonces.has(p['SignatureNonce']!)) return { status: 400, code: 'SignatureNonceUsed', message: 'Specified signature nonce was used already.' }
    this.nonces.add(p['SignatureNonce']!)
    return undefined
  }

  private dispatch(action: string, p: Record<string, string>): Record<string, unknown> {
    const need = (name: string): string => {
      const v = p[name]
      if (!v) throw new ApiError(400, `Missing${name}`, `The input parameter "${name}" that is mandatory for processing this request is not supplied.`)
      return v
    }
    const region = (): void => {
      if (need('RegionId') !== this.regionId) throw new ApiError(404, 'InvalidRegionId.NotFound', 'The specified RegionId does not exist.')
    }
    switch (action) {
      case 'DescribeVpcs': {
        region()
        if (p['VpcId'] && p['VpcId'] !== this.vpcId) throw new ApiError(404, 'InvalidVpcId.NotFound', 'Specified VPC can not found.')
        return { TotalCount: 1, PageNumber: 1, PageSize: 10, Vpcs: { Vpc: [{ VpcId: this.vpcId, RegionId: this.regionId, Status: 'Available', VpcName: 'weft', VRouterId: this.vRouterId, CidrBlock: '192.168.0.0/16', IsDefault: false, VSwitchIds: { VSwitchId: ['vsw-bp1weft'] } }] } }
      }
      case 'DescribeVRouters': {
        region()
        if (p['VRouterId'] && p['VRouterId'] !== this.vRouterId) throw new ApiError(404, 'InvalidVRouterId.NotFound', 'Specified virtual router does not exist.')
        return { TotalCount: 1, PageNumber: 1, PageSize: 10, VRouters: { VRouter: [{ VRouterId: this.vRouterId, VpcId: this.vpcId, RegionId: this.regionId, VRouterName: '', RouteTableIds: { RouteTableId: [this.routeTableId] } }] } }
      }
      case 'DescribeRouteTables': {
        if (p['RouteTableId'] && p['RouteTableId'] !== this.routeTableId) throw new ApiError(404, 'InvalidRouteTableId.NotFound', 'Specified route table does not exist.')
        if (p['VRouterId'] && p['VRouterId'] !== this.vRouterId) throw new ApiError(404, 'InvalidVRouterId.NotFound', 'Specified virtual router does not exist.')
        if ((Number(p['PageNumber'] ?? 1) || 1) === 1) for (const e of this.entries) if (e.Status === 'Pending' && --e.pendingPolls < 0) e.Status = 'Available'
        // Entries are paged (PageSize ≤ 50) and TotalCount counts them, so a full table spans pages.
        const size = Math.min(Number(p['PageSize'] ?? 10) || 10, 50)
        const page = Number(p['PageNumber'] ?? 1) || 1
        const RouteEntry = this.entries.slice((page - 1) * size, page * size).map((e) => ({
          RouteTableId: this.routeTableId, DestinationCidrBlock: e.DestinationCidrBlock, Type: e.Type, Status: e.Status, NextHopType: e.NextHopType, InstanceId: e.InstanceId,
          NextHops: { NextHop: e.InstanceId ? [{ NextHopType: e.NextHopType, NextHopId: e.InstanceId, Enabled: 1, Weight: 0 }] : [] },
        }))
        return { TotalCount: this.entries.length, PageNumber: page, PageSize: size, RouteTables: { RouteTable: [{ RouteTableId: this.routeTableId, VRouterId: this.vRouterId, RouteTableType: 'System', CreationTime: '2026-01-01T00:00:00Z', RouteEntrys: { RouteEntry } }] } }
      }
      case 'CreateRouteEntry': {
        if (need('RouteTableId') !== this.routeTableId) throw new ApiError(404, 'InvalidRouteTableId.NotFound', 'Specified route table does not exist.')
        const dest = need('DestinationCidrBlock')
        if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(dest)) throw new ApiError(400, 'InvalidDestinationCidrBlock.Malformed', 'Specified DestinationCidrBlock is not valid.')
        const hopType = p['NextHopType'] ?? 'Instance'
        const hop = need('NextHopId')
        if (hopType === 'Instance' && !this.instances.has(hop)) throw new ApiError(404, 'InvalidInstanceId.NotFound', 'The specified instance does not exist.')
        if (this.entries.some((e) => e.DestinationCidrBlock === dest)) throw new ApiError(400, 'InvalidCIDRBlock.Duplicate', 'Specified CIDR block is already exists.')
        if (this.custom().length >= this.routeQuota) throw new ApiError(400, 'QuotaExceeded.RouteEntryNum', `The number of route entries in the route table exceeds the quota (${this.routeQuota}).`)
        this.putEntry(dest, hop, 'Pending')
        return {}
      }
      case 'DeleteRouteEntry': {
        if (need('RouteTableId') !== this.routeTableId) throw new ApiError(404, 'InvalidRouteTableId.NotFound', 'Specified route table does not exist.')
        const dest = need('DestinationCidrBlock')
        const i = this.entries.findIndex((e) => e.Type === 'Custom' && e.DestinationCidrBlock === dest && (!p['NextHopId'] || e.InstanceId === p['NextHopId']))
        if (i < 0) throw new ApiError(404, 'InvalidRouteEntry.NotFound', 'Specified route entry does not exist.')
        if (this.entries[i]!.Status !== 'Available') throw new ApiError(400, 'IncorrectRouteEntryStatus', 'The status of the route entry is incorrect.')
        this.entries.splice(i, 1)
        return {}
      }
      default:
        throw new ApiError(404, 'InvalidAction.NotFound', `Specified api is not found, please check your url and method.`)
    }
  }
}

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message) }
}

/** Alibaba's percent-encoding (RFC 3986: also ! ' ( ) *). */
function encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Signature v1: HMAC-SHA1(secret&, METHOD&%2F&encode(sorted canonical query)), base64. */
export function sign(method: string, params: Record<string, string>, secret: string): string {
  const canonical = Object.keys(params).sort().map((k) => `${encode(k)}=${encode(params[k]!)}`).join('&')
  const stringToSign = `${method}&${encode('/')}&${encode(canonical)}`
  return createHmac('sha1', `${secret}&`).update(stringToSign).digest('base64')
}

function rid(): string {
  return randomUUID().toUpperCase()
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json;charset=utf-8' }).end(JSON.stringify(body))
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => { data += c })
    req.on('end', () => resolve(data))
    req.on('error', reject)
  })
}
