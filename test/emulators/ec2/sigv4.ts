/**
 * Server-side AWS Signature Version 4 check, as EC2 does it: parse the Authorization header,
 * rebuild the canonical request and compare signatures with the secret the emulator knows.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { Ec2Fault } from './ec2-state.ts'

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest()

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/

/** Throws Ec2Fault (AuthFailure / SignatureDoesNotMatch) unless the request is signed with a known key. */
export function verifySigV4(
  req: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer },
  keys: ReadonlyMap<string, string>,
  expect: { service: string },
): { accessKeyId: string; region: string } {
  const header = req.headers.authorization
  if (header === undefined) throw new Ec2Fault('AuthFailure', 'AWS was not able to validate the provided access credentials', 401)
  const m = AUTH.exec(header)
  if (m === null) throw new Ec2Fault('AuthFailure', 'AWS was not able to validate the provided access credentials', 401)
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as string[]
  const secret = keys.get(accessKeyId!)
  if (secret === undefined) throw new Ec2Fault('AuthFailure', 'AWS was not able to validate the provided access credentials', 401)
  if (service !== expect.service) throw new Ec2Fault('SignatureDoesNotMatch', `Credential should be scoped to correct service: '${expect.service}'`, 403)
  const amzDate = String(req.headers['x-amz-date'] ?? '')
  if (!amzDate.startsWith(date!)) throw new Ec2Fault('SignatureDoesNotMatch', 'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP', 403)
  const names = signedHeaders!.split(';')
  if (!names.includes('host')) throw new Ec2Fault('SignatureDoesNotMatch', "'Host' must be a 'SignedHeader' in the AWS Authorization", 403)

  const url = new URL(req.url, 'http://x')
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&')
  const canonicalHeaders = names.map((n) => `${n}:${headerValue(req.headers[n])}\n`).join('')
  const payloadHash = typeof req.headers['x-amz-content-sha256'] === 'string' && req.headers['x-amz-content-sha256'] !== 'UNSIGNED-PAYLOAD'
    ? req.headers['x-amz-content-sha256']
    : sha256(req.body)
  if (payloadHash !== sha256(req.body)) throw new Ec2Fault('SignatureDoesNotMatch', 'The provided x-amz-content-sha256 header does not match what was computed', 403)
  const canonical = [req.method, url.pathname || '/', query, canonicalHeaders, signedHeaders, payloadHash].join('\n')
  const scope = `${date}/${region}/${service}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n')
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date!), region!), service!), 'aws4_request')
  const expected = hmac(key, toSign)
  if (!timingSafeEqual(expected, Buffer.from(signature!, 'hex'))) {
    throw new Ec2Fault('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.', 403)
  }
  return { accessKeyId: accessKeyId!, region: region! }
}

function headerValue(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v.join(',') : (v ?? '')
  return s.trim().replace(/\s+/g, ' ')
}

function encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}
