/**
 * LeaseAttrs <-> the JSON flannel stores as a subnet key's value. Byte-compatible with Go's
 * encoding/json on flannel's struct: PublicIP, PublicIPv6 (null when absent, always present),
 * BackendType / BackendData / BackendV6Data (omitted when empty), compact, HTML-escaped.
 */
import { WeftError } from '../errors.ts'
import { type IpAddr, formatIp, parseIp } from '../ip/ip.ts'
import type { LeaseAttrs } from './lease.ts'

const FIELD_NAMES = new Set(['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data'])
const LOWER_NAMES = new Map([...FIELD_NAMES].map((n) => [n.toLowerCase(), n]))

// flannel's PublicIP is a value type (ip.IP4): a v6-only host writes the zero address.
const ZERO_V4 = '0.0.0.0'

/** Encodes attributes exactly as flannel's json.Marshal(LeaseAttrs) would. */
export function encodeLeaseAttrs(attrs: LeaseAttrs): string {
  const out: Record<string, unknown> = {
    PublicIP: attrs.publicIP ? formatIp(attrs.publicIP) : ZERO_V4,
    PublicIPv6: attrs.publicIPv6 ? formatIp(attrs.publicIPv6) : null,
  }
  if (attrs.backendType !== '') out['BackendType'] = attrs.backendType
  if (!isEmptyRaw(attrs.backendData)) out['BackendData'] = attrs.backendData
  if (!isEmptyRaw(attrs.backendV6Data)) out['BackendV6Data'] = attrs.backendV6Data
  return goEscape(JSON.stringify(out))
}

/**
 * Decodes a stored value. Rejects anything malformed with a LEASE_INVALID WeftError naming
 * the field; never throws anything else.
 */
export function decodeLeaseAttrs(json: string): LeaseAttrs {
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    throw invalid('value', 'is not valid JSON')
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('value', 'must be a JSON object')
  const obj = raw as Record<string, unknown>
  // Go matches field names case-insensitively; one pass, the exact spelling wins.
  const fields: Record<string, unknown> = {}
  for (const k of Object.keys(obj)) {
    const canonical = FIELD_NAMES.has(k) ? k : LOWER_NAMES.get(k.toLowerCase())
    if (canonical !== undefined && (k === canonical || !(canonical in fields))) fields[canonical] = obj[k]
  }
  const publicIP = decodeIp(fields['PublicIP'], 'PublicIP', 4)
  const publicIPv6 = decodeIp(fields['PublicIPv6'], 'PublicIPv6', 6)
  const backendType = fields['BackendType'] ?? ''
  if (typeof backendType !== 'string') throw invalid('BackendType', 'must be a string')
  const backendData = fields['BackendData']
  const backendV6Data = fields['BackendV6Data']
  const attrs: { -readonly [K in keyof LeaseAttrs]: LeaseAttrs[K] } = { backendType }
  if (publicIP) attrs.publicIP = publicIP
  if (publicIPv6) attrs.publicIPv6 = publicIPv6
  if (!isEmptyRaw(backendData)) attrs.backendData = backendData
  if (!isEmptyRaw(backendV6Data)) attrs.backendV6Data = backendV6Data
  return attrs
}

function decodeIp(value: unknown, name: string, family: 4 | 6): IpAddr | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw invalid(name, `must be an IPv${family} address string`)
  const ip = safeParseIp(value)
  if (!ip || ip.family !== family) throw invalid(name, `must be an IPv${family} address, got "${value.slice(0, 64)}"`)
  return ip.value === 0n ? undefined : ip
}

// ip.ts parseIp recurses forever on dotted text that is not a quad ("1.2.3"): screen it first.
function safeParseIp(text: string): IpAddr | undefined {
  if (text.length > 64 || (!text.includes(':') && !/^\d{1,3}(\.\d{1,3}){3}$/.test(text))) return undefined
  try {
    return parseIp(text)
  } catch {
    return undefined
  }
}

// json.RawMessage with omitempty drops only a missing value: a stored `null` is kept as the
// four bytes "null" and written back, so we keep it too (round-trips stay byte-identical).
function isEmptyRaw(value: unknown): boolean {
  return value === undefined
}

/** A value as Go's json.Marshal writes it (compact, HTML-escaped): kube annotations hold such text. */
export function goJson(value: unknown): string {
  return goEscape(JSON.stringify(value))
}

// encoding/json escapes <, >, & and U+2028/U+2029 inside strings by default.
function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function invalid(fieldName: string, rule: string): WeftError {
  return new WeftError('LEASE_INVALID', `lease ${fieldName} ${rule}`, { details: { field: fieldName } })
}
