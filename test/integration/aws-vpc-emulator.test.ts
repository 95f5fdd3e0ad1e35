/**
 * The EC2/IMDS emulator checks what the real services check: raw requests signed with the
 * SDK's own SigV4 signer (or not signed at all) get EC2's error codes and XML error document.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { SignatureV4 } from '@smithy/signature-v4'
import { TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, startEc2Emulator } from '../emulators/ec2/ec2-emulator.ts'

const emu = await startEc2Emulator()
after(() => emu.close())
const st = emu.state
const subnet = st.addSubnet()
const inst = st.addInstance(subnet, ['172.31.1.10'])
const table = st.addTable({ main: true })

const bytes = (d: string | ArrayBuffer | ArrayBufferView): string | Buffer =>
  typeof d === 'string' ? d : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d)

/** node:crypto in the shape the smithy signer wants. */
class Sha256 {
  private h
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret))
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void { this.h.update(bytes(data)) }
  async digest(): Promise<Uint8Array> { return new Uint8Array(this.h.digest()) }
  reset(): void {}
}

async function ec2(body: string, options: { sign?: boolean; secret?: string; keyId?: string; tamper?: boolean } = {}) {
  const url = new URL(emu.url)
  let headers: Record<string, string> = { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }
  if (options.sign !== false) {
    const signer = new SignatureV4({
      credentials: { accessKeyId: options.keyId ?? TEST_ACCESS_KEY_ID, secretAccessKey: options.secret ?? TEST_SECRET_ACCESS_KEY },
      region: 'us-east-1', service: 'ec2', sha256: Sha256,
    })
    const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query: {}, headers, body })
    headers = signed.headers as Record<string, string>
  }
  const { host: _host, ...sent } = headers
  const res = await fetch(emu.url + '/', { method: 'POST', headers: sent, body: options.tamper ? body + '&x=1' : body })
  const xml = await res.text()
  return { status: res.status, xml, code: /<Code>([^<]+)<\/Code>/.exec(xml)?.[1] }
}

const form = (p: Record<string, string>): string => new URLSearchParams(p).toString()

test('signature: absent, unknown key, wrong secret and tampered body are refused', async () => {
  const body = form({ Action: 'DescribeRouteTables', Version: '2016-11-15' })
  const unsigned = await ec2(body, { sign: false })
  assert.equal(unsigned.status, 401)
  assert.equal(unsigned.code, 'AuthFailure')
  assert.match(unsigned.xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Response><Errors><Error><Code>AuthFailure<\/Code><Message>[^<]+<\/Message><\/Error><\/Errors><RequestID>[^<]+<\/RequestID><\/Response>$/)
  assert.equal((await ec2(body, { keyId: 'AKIAUNKNOWN000000000' })).code, 'AuthFailure')
  assert.equal((await ec2(body, { secret: 'wrong' })).code, 'SignatureDoesNotMatch')
  assert.equal((await ec2(body, { tamper: true })).code, 'SignatureDoesNotMatch')
  const ok = await ec2(body)
  assert.equal(ok.status, 200)
  assert.match(ok.xml, /<DescribeRouteTablesResponse xmlns="http:\/\/ec2\.amazonaws\.com\/doc\/2016-11-15\/"><requestId>/)
})

test('action, version and required parameters are checked', async () => {
  assert.equal((await ec2(form({ Version: '2016-11-15' }))).code, 'MissingAction')
  assert.equal((await ec2(form({ Action: 'RunInstances', Version: '2016-11-15' }))).code, 'InvalidAction')
  assert.equal((await ec2(form({ Action: 'DescribeRouteTables' }))).code, 'MissingParameter')
  assert.equal((await ec2(form({ Action: 'DescribeRouteTables', Version: '2013-01-01' }))).code, 'NoSuchVersion')
  const missing = await ec2(form({ Action: 'CreateRoute', Version: '2016-11-15', RouteTableId: table.id, NetworkInterfaceId: inst.eniIds[0]! }))
  assert.equal(missing.code, 'MissingParameter')
  assert.match(missing.xml, /parameter destinationCidrBlock/)
  const noTarget = await ec2(form({ Action: 'CreateRoute', Version: '2016-11-15', RouteTableId: table.id, DestinationCidrBlock: '10.1.0.0/24' }))
  assert.equal(noTarget.code, 'InvalidParameterCombination')
  const badCidr = await ec2(form({ Action: 'CreateRoute', Version: '2016-11-15', RouteTableId: table.id, DestinationCidrBlock: '10.1.0.0/33', NetworkInterfaceId: inst.eniIds[0]! }))
  assert.equal(badCidr.code, 'InvalidParameterValue')
  const badFilter = await ec2(form({ Action: 'DescribeRouteTables', Version: '2016-11-15', 'Filter.1.Name': 'nope', 'Filter.1.Value.1': 'x' }))
  assert.equal(badFilter.code, 'InvalidParameterValue')
})

test('unknown resources get the real NotFound / Malformed codes; duplicates and local routes are refused', async () => {
  const v = { Version: '2016-11-15' }
  assert.equal((await ec2(form({ Action: 'DescribeInstances', ...v, 'InstanceId.1': 'i-0123456789abcdef0' }))).code, 'InvalidInstanceID.NotFound')
  assert.equal((await ec2(form({ Action: 'DescribeInstances', ...v, 'InstanceId.1': 'bogus' }))).code, 'InvalidInstanceID.Malformed')
  assert.equal((await ec2(form({ Action: 'DescribeRouteTables', ...v, 'RouteTableId.1': 'rtb-0123456789abcdef0' }))).code, 'InvalidRouteTableID.NotFound')
  assert.equal((await ec2(form({ Action: 'ModifyNetworkInterfaceAttribute', ...v, NetworkInterfaceId: 'eni-0123456789abcdef0', 'SourceDestCheck.Value': 'false' }))).code, 'InvalidNetworkInterfaceID.NotFound')
  assert.equal((await ec2(form({ Action: 'DeleteRoute', ...v, RouteTableId: table.id, DestinationCidrBlock: '10.9.0.0/24' }))).code, 'InvalidRoute.NotFound')
  assert.equal((await ec2(form({ Action: 'ReplaceRoute', ...v, RouteTableId: table.id, DestinationCidrBlock: '10.9.0.0/24', NetworkInterfaceId: inst.eniIds[0]! }))).code, 'InvalidRoute.NotFound')
  assert.equal((await ec2(form({ Action: 'DeleteRoute', ...v, RouteTableId: table.id, DestinationCidrBlock: st.vpcCidr }))).code, 'InvalidParameterValue')
  const create = form({ Action: 'CreateRoute', ...v, RouteTableId: table.id, DestinationCidrBlock: '10.9.0.0/24', NetworkInterfaceId: inst.eniIds[0]! })
  assert.equal((await ec2(create)).status, 200)
  assert.equal((await ec2(create)).code, 'RouteAlreadyExists')
})

test('faults on demand: throttling (503) and internal errors (500)', async () => {
  emu.failNext('DescribeRouteTables', { code: 'RequestLimitExceeded', status: 503, message: 'Request limit exceeded.' })
  const body = form({ Action: 'DescribeRouteTables', Version: '2016-11-15' })
  const throttled = await ec2(body)
  assert.deepEqual([throttled.status, throttled.code], [503, 'RequestLimitExceeded'])
  emu.failNext('*', { code: 'InternalError', status: 500 })
  assert.equal((await ec2(body)).status, 500)
  assert.equal((await ec2(body)).status, 200)
})

test('IMDS: token TTL required, tokens checked, v2-required refuses tokenless reads', async () => {
  emu.identity = { region: 'ap-south-1', instanceId: inst.id }
  const noTtl = await fetch(`${emu.url}/latest/api/token`, { method: 'PUT' })
  assert.equal(noTtl.status, 400)
  const tok = await fetch(`${emu.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })
  const token = await tok.text()
  const read = (headers: Record<string, string> = {}) => fetch(`${emu.url}/latest/meta-data/placement/region`, { headers })
  assert.equal(await (await read({ 'x-aws-ec2-metadata-token': token })).text(), 'ap-south-1')
  assert.equal((await read({ 'x-aws-ec2-metadata-token': 'forged' })).status, 401)
  assert.equal((await read()).status, 200)
  emu.imdsMode = 'v2-required'
  assert.equal((await read()).status, 401)
  emu.imdsMode = 'v1-only'
  assert.equal((await fetch(`${emu.url}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).status, 404)
  assert.equal((await (await fetch(`${emu.url}/latest/meta-data/instance-id`)).text()), inst.id)
  assert.equal((await fetch(`${emu.url}/latest/meta-data/iam/security-credentials/`)).status, 404)
})
