/**
 * A local EC2 + instance metadata (IMDS) emulator for aws-vpc tests, on loopback, port 0.
 *
 * EC2: `POST /` with a form-encoded Query body (`Action=…&Version=2016-11-15`), a SigV4
 * `Authorization` header checked against the known test keys, XML replies and EC2's error
 * document. IMDS: `PUT /latest/api/token` (TTL header) and `GET /latest/meta-data/…` with the
 * `X-aws-ec2-metadata-token` header; `imdsMode` selects v2-optional, v2-required or v1-only.
 * Every call is recorded, and faults (throttling, 5xx) can be queued per action.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { EC2_VERSION, HANDLERS, errorXml } from './ec2-query.ts'
import { Ec2Fault, Ec2State } from './ec2-state.ts'
import { verifySigV4 } from './sigv4.ts'

export const TEST_ACCESS_KEY_ID = 'AKIAEMULATOR00000001'
export const TEST_SECRET_ACCESS_KEY = 'emulator/secret/key/0000000000000000000'

export interface Ec2Call {
  readonly action: string
  readonly params: Readonly<Record<string, string>>
  /** Region from the SigV4 credential scope, once the signature checked out. */
  region?: string
  /** Status the emulator answered with. */
  status: number
  errorCode?: string
}

export interface ImdsCall {
  readonly method: string
  readonly path: string
  readonly withToken: boolean
  status: number
}

/** v2-optional: tokens work and are not required (EC2 default); v2-required: HttpTokens=required; v1-only: no token endpoint. */
export type ImdsMode = 'v2-optional' | 'v2-required' | 'v1-only'

export interface Fault {
  readonly code: string
  readonly status: number
  readonly message?: string
}

export const THROTTLE: Fault = { code: 'RequestLimitExceeded', status: 503, message: 'Request limit exceeded.' }
export const INTERNAL: Fault = { code: 'InternalError', status: 500, message: 'An internal error has occurred' }
export const UNAVAILABLE: Fault = { code: 'Unavailable', status: 503, message: 'The server is overloaded and can\'t handle the request' }

export interface Ec2Emulator {
  readonly state: Ec2State
  /** `http://127.0.0.1:<port>`: both the EC2 endpoint and the IMDS endpoint. */
  readonly url: string
  readonly calls: Ec2Call[]
  readonly imdsCalls: ImdsCall[]
  /** Region and instance IMDS reports. */
  identity: { region: string; instanceId: string }
  imdsMode: ImdsMode
  /** Role name served under iam/security-credentials/ (instance-role credentials), if any. */
  instanceRole?: string
  /** Queue `times` faults for the next calls of `action` ('*' matches any action). */
  failNext(action: string, fault: Fault, times?: number): void
  /** Calls of the mutating actions, e.g. ['CreateRoute rtb-… 10.244.3.0/24']. */
  mutations(): string[]
  close(): Promise<void>
}

const MUTATING = new Set(['CreateRoute', 'ReplaceRoute', 'DeleteRoute', 'ModifyNetworkInterfaceAttribute'])

export interface EmulatorOptions {
  /** Called after each EC2 call was answered (e.g. to report calls from a child process). */
  readonly onCall?: (call: Ec2Call) => void
  /** Listen address; default 127.0.0.1. */
  readonly host?: string
}

export async function startEc2Emulator(state = new Ec2State(), options: EmulatorOptions = {}): Promise<Ec2Emulator> {
  const faults: { action: string; fault: Fault }[] = []
  const tokens = new Map<string, number>()
  const keys = new Map([[TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY]])

  const emu: Ec2Emulator = {
    state,
    url: '',
    calls: [],
    imdsCalls: [],
    identity: { region: 'us-east-1', instanceId: '' },
    imdsMode: 'v2-optional',
    failNext(action, fault, times = 1) {
      for (let i = 0; i < times; i++) faults.push({ action, fault })
    },
    mutations() {
      return emu.calls.filter((c) => MUTATING.has(c.action) && c.status === 200)
        .map((c) => [c.action, c.params.RouteTableId ?? c.params.NetworkInterfaceId, c.params.DestinationCidrBlock].filter(Boolean).join(' '))
    },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }),
  }

  function ec2(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const params = new URLSearchParams(body.toString('utf8'))
    const action = params.get('Action') ?? ''
    const call: Ec2Call = { action, params: Object.fromEntries(params), status: 200 }
    emu.calls.push(call)
    const reply = (status: number, xml: string): void => {
      call.status = status
      res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': 'emu' }).end(xml)
      options.onCall?.(call)
    }
    try {
      if (req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') !== true) {
        throw new Ec2Fault('InvalidParameterValue', 'the request body must be application/x-www-form-urlencoded')
      }
      call.region = verifySigV4({ method: req.method ?? '', url: req.url ?? '/', headers: req.headers, body }, keys, { service: 'ec2' }).region
      if (action === '') throw new Ec2Fault('MissingAction', 'The request must contain the parameter Action')
      const version = params.get('Version')
      if (version === null) throw new Ec2Fault('MissingParameter', 'The request must contain the parameter Version')
      if (version !== EC2_VERSION) throw new Ec2Fault('NoSuchVersion', `An invalid or unsupported API version was specified: ${version}`)
      const handler = HANDLERS[action]
      if (handler === undefined) throw new Ec2Fault('InvalidAction', `The action ${action} is not valid for this web service.`)
      const i = faults.findIndex((f) => f.action === action || f.action === '*')
      if (i >= 0) {
        const fault = faults.splice(i, 1)[0]!.fault
        throw new Ec2Fault(fault.code, fault.message ?? fault.code, fault.status)
      }
      reply(200, handler(state, params))
    } catch (err) {
      const f = err instanceof Ec2Fault ? err : new Ec2Fault('InternalError', (err as Error).message, 500)
      call.errorCode = f.code
      reply(f.status, errorXml(f.code, f.message))
    }
  }

  function imds(req: IncomingMessage, res: ServerResponse, path: string): void {
    const token = req.headers['x-aws-ec2-metadata-token']
    const call: ImdsCall = { method: req.method ?? '', path, withToken: typeof token === 'string', status: 200 }
    emu.imdsCalls.push(call)
    const reply = (status: number, body: string, headers: Record<string, string> = {}): void => {
      call.status = status
      res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(body)
    }
    if (path === '/latest/api/token') {
      if (emu.imdsMode === 'v1-only') return reply(404, 'Not Found')
      if (req.method !== 'PUT') return reply(405, 'Method Not Allowed')
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds'])
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return reply(400, 'Bad Request')
      const value = randomBytes(24).toString('base64')
      tokens.set(value, Date.now() + ttl * 1000)
      return reply(200, value, { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) })
    }
    if (req.method !== 'GET') return reply(405, 'Method Not Allowed')
    if (typeof token === 'string') {
      const exp = tokens.get(token)
      if (emu.imdsMode === 'v1-only' || exp === undefined || exp < Date.now()) return reply(401, 'Unauthorized')
    } else if (emu.imdsMode === 'v2-required') {
      return reply(401, 'Unauthorized')
    }
    const md = path.replace(/^\/latest\/meta-data\//, '')
    const role = emu.instanceRole
    const values: Record<string, string | undefined> = {
      'instance-id': emu.identity.instanceId,
      'placement/region': emu.identity.region,
      'placement/availability-zone': `${emu.identity.region}a`,
      'iam/security-credentials/': role,
      'iam/security-credentials': role,
    }
    if (role !== undefined) {
      values[`iam/security-credentials/${role}`] = JSON.stringify({
        Code: 'Success', Type: 'AWS-HMAC', AccessKeyId: TEST_ACCESS_KEY_ID, SecretAccessKey: TEST_SECRET_ACCESS_KEY,
        Token: 'emulator-session-token', LastUpdated: new Date().toISOString(), Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
      })
    }
    const value = path.startsWith('/latest/meta-data/') ? values[md] : undefined
    if (value === undefined) return reply(404, 'Not Found')
    reply(200, value)
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname
      if (path.startsWith('/latest/')) return imds(req, res, path)
      if (req.method === 'POST' && path === '/') return ec2(req, Buffer.concat(chunks), res)
      res.writeHead(404).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  ;(emu as { url: string }).url = `http://127.0.0.1:${port}`
  return emu
}
