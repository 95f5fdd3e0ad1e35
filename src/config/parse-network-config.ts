/**
 * parseNetworkConfig: port of flannel's ParseConfig + CheckNetworkConfig (etcd mode).
 *
 * Decoding follows Go encoding/json into flannel's Config struct: keys match fields
 * case-insensitively and a later key for the same field wins; `null` leaves a bool or number
 * field at its default; a wrong JSON type is an error naming the field. Unknown keys are
 * ignored by flannel; weft ignores them too but reports each as a warning.
 */
import { ConfigError, type ErrorCode } from '../errors.ts'
import { parseCidr, parseIp, type IpAddr, type IpNet } from '../ip/ip.ts'
import type { BackendDefinition } from '../backend/backend.ts'
import type { BackendConfig, NetworkConfig } from './network-config.ts'
import { checkFamily } from './check-network-config.ts'
import { FieldError } from './field-error.ts'
import { describe } from './backend-options.ts'
import { jsonTypeName, parseOrderedJson, toPlain, type JsonObject, type JsonValue } from './ordered-json.ts'

/** Anything keyed by lower-cased backend type (src/backend/registry.ts `backendRegistry`). */
export type BackendLookup = Readonly<Record<string, BackendDefinition>>

export interface ParsedNetworkConfig {
  readonly config: NetworkConfig
  /** Human-readable notes about accepted but suspicious input (unknown keys, implicit udp). */
  readonly warnings: string[]
}

export interface ParseOptions {
  /**
   * 'etcd' (default) applies flannel's CheckNetworkConfig. 'kube' is flannel's kube mode, which
   * never calls it: the node's podCIDR is the subnet, so SubnetLen/SubnetMin/SubnetMax problems
   * become warnings and the computed values are only informative. Network is still required.
   */
  readonly mode?: 'etcd' | 'kube'
}

type Kind = 'bool' | 'uint' | 'cidr' | 'ip' | 'backend'
interface Field { readonly name: string; readonly kind: Kind; readonly family?: 4 | 6; readonly nullable?: boolean }

// flannel's subnet.Config fields. IPv6SubnetMin/Max are pointers in Go, so null clears them.
const FIELDS: readonly Field[] = [
  { name: 'EnableIPv4', kind: 'bool' },
  { name: 'EnableIPv6', kind: 'bool' },
  { name: 'EnableNFTables', kind: 'bool' },
  { name: 'Network', kind: 'cidr', family: 4 },
  { name: 'IPv6Network', kind: 'cidr', family: 6 },
  { name: 'SubnetLen', kind: 'uint' },
  { name: 'IPv6SubnetLen', kind: 'uint' },
  { name: 'SubnetMin', kind: 'ip', family: 4 },
  { name: 'SubnetMax', kind: 'ip', family: 4 },
  { name: 'IPv6SubnetMin', kind: 'ip', family: 6, nullable: true },
  { name: 'IPv6SubnetMax', kind: 'ip', family: 6, nullable: true },
  { name: 'Backend', kind: 'backend' },
]
const BY_KEY = new Map(FIELDS.map((f) => [f.name.toLowerCase(), f]))

type Decoded = Record<string, boolean | number | IpNet | IpAddr | JsonValue | undefined>

/** Parses and validates the network config JSON; throws ConfigError (or BACKEND_UNKNOWN) naming the field. */
export function parseNetworkConfig(json: string, registry: BackendLookup, options: ParseOptions = {}): ParsedNetworkConfig {
  const root = parseOrderedJson(json)
  if (root === null || typeof root !== 'object' || Array.isArray(root) || root.kind !== 'object') {
    throw new ConfigError('', `the network config must be a JSON object, got ${jsonTypeName(root)}`)
  }
  const warnings: string[] = []
  const d: Decoded = { EnableIPv4: true, EnableIPv6: false, EnableNFTables: false, SubnetLen: 0, IPv6SubnetLen: 0 }
  for (const [key, value] of root.entries) {
    const field = BY_KEY.get(key.toLowerCase())
    if (!field) {
      warnings.push(`unknown key "${key}" in the network config is ignored`)
      continue
    }
    decodeField(d, field, value)
  }
  const enableIPv4 = d.EnableIPv4 as boolean
  const enableIPv6 = d.EnableIPv6 as boolean
  if (!enableIPv4 && !enableIPv6) {
    throw new FieldError('EnableIPv4', 'none defined stack: EnableIPv4 and EnableIPv6 are both false; enable at least one')
  }
  const check = options.mode === 'kube' ? checkFamilyLenient(warnings) : checkFamily
  const ipv4 = enableIPv4
    ? check(4, { network: d.Network as IpNet | undefined, subnetLen: d.SubnetLen as number, subnetMin: d.SubnetMin as IpAddr | undefined, subnetMax: d.SubnetMax as IpAddr | undefined })
    : undefined
  const ipv6 = enableIPv6
    ? check(6, { network: d.IPv6Network as IpNet | undefined, subnetLen: d.IPv6SubnetLen as number, subnetMin: d.IPv6SubnetMin as IpAddr | undefined, subnetMax: d.IPv6SubnetMax as IpAddr | undefined })
    : undefined
  const backend = parseBackend(d.Backend as JsonValue | undefined, 'Backend' in d, registry, warnings)
  const config: NetworkConfig = Object.freeze({
    enableIPv4,
    enableIPv6,
    ...(ipv4 ? { ipv4 } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    enableNFTables: d.EnableNFTables as boolean,
    backend,
  })
  return { config, warnings }
}

/** Kube mode: only a missing Network is an error; other rule breaks are reported and defaulted. */
function checkFamilyLenient(warnings: string[]): typeof checkFamily {
  return (family, raw) => {
    try {
      return checkFamily(family, raw)
    } catch (err) {
      if (!(err instanceof ConfigError) || err.message.startsWith('please define')) throw err
      warnings.push(`${err.message} (ignored: the Kubernetes subnet manager takes subnets from the node's podCIDR)`)
      try {
        return checkFamily(family, { network: raw.network, subnetLen: 0 })
      } catch {
        // A network too small for flannel's defaults: one "subnet", the network itself.
        const net = raw.network as IpNet
        const ip: IpAddr = { family, value: net.addr }
        return Object.freeze({ network: net, subnetLen: net.prefix, subnetMin: ip, subnetMax: ip })
      }
    }
  }
}

function decodeField(d: Decoded, field: Field, value: JsonValue): void {
  const { name } = field
  if (field.kind === 'backend') { d[name] = value; return }
  if (value === null) {
    // Go: null is a no-op for bool/uint, clears a pointer, and fails flannel's IP UnmarshalJSON.
    if (field.kind === 'bool' || field.kind === 'uint') return
    if (field.nullable) { d[name] = undefined; return }
  }
  const got = describeJson(value)
  switch (field.kind) {
    case 'bool':
      if (typeof value !== 'boolean') throw new ConfigError(name, `must be a boolean (true or false), got ${got}`)
      d[name] = value
      return
    case 'uint':
      d[name] = decodeUint(name, value)
      return
    case 'cidr': {
      const fam = field.family === 4 ? 'IPv4' : 'IPv6'
      const net = typeof value === 'string' ? parseCidr(value) : undefined
      if (!net || net.family !== field.family) {
        throw new ConfigError(name, `invalid ${fam} CIDR format: must be a string such as ${field.family === 4 ? '"10.5.0.0/16"' : '"fc00::/48"'}, got ${got}`)
      }
      d[name] = net
      return
    }
    case 'ip': {
      const ip = typeof value === 'string' ? parseIp(value) : undefined
      if (!ip || ip.family !== field.family) {
        throw new ConfigError(name, `must be an IPv${field.family} address string, got ${got}`)
      }
      // flannel treats the zero address as "not set" and computes the default.
      d[name] = ip.value === 0n ? undefined : ip
      return
    }
  }
}

function decodeUint(name: string, value: JsonValue): number {
  const isNumber = typeof value === 'object' && value !== null && !Array.isArray(value) && value.kind === 'number'
  // Go decodes a uint field with ParseUint on the literal: no sign, fraction or exponent.
  if (!isNumber || !/^\d+$/.test(value.text)) {
    throw new ConfigError(name, `must be a non-negative integer, got ${describeJson(value)}`)
  }
  if (BigInt(value.text) > 0xffff_ffff_ffff_ffffn) throw new ConfigError(name, `is out of range, got ${value.text}`)
  return Number(value.text)
}

function parseBackend(raw: JsonValue | undefined, present: boolean, registry: BackendLookup, warnings: string[]): BackendConfig {
  const expected = `expected one of ${Object.keys(registry).join(', ')}`
  if (!present) {
    warnings.push('the network config has no Backend section: using type "udp" as flannel does; set Backend.Type explicitly (e.g. "vxlan")')
    return makeBackend('udp', {}, registry, expected)
  }
  if (raw === null || raw === undefined || typeof raw !== 'object' || Array.isArray(raw) || raw.kind !== 'object') {
    throw new ConfigError('Backend', `must be an object with a Type, got ${describeJson(raw ?? null)}`)
  }
  const section = lowerCaseSection(raw)
  const type = section.type
  delete section.type
  if (type === undefined || type === null) throw new ConfigError('Backend.Type', `is required; ${expected}`)
  if (typeof type !== 'string') throw new ConfigError('Backend.Type', `must be a string, got ${describe(type)}`)
  return makeBackend(type.toLowerCase(), section, registry, expected, type)
}

function makeBackend(type: string, section: Record<string, unknown>, registry: BackendLookup, expected: string, given = type): BackendConfig {
  const def = Object.hasOwn(registry, type) ? registry[type] : undefined
  if (!def) {
    const code: ErrorCode = 'BACKEND_UNKNOWN'
    throw new FieldError('Backend.Type', `unknown backend type ${JSON.stringify(given)}; ${expected}`, { code })
  }
  return Object.freeze({ type, options: def.parseOptions(Object.freeze(section)) })
}

/** Backend keys lower-cased; a later key that folds to the same name wins (Go semantics). */
function lowerCaseSection(obj: JsonObject): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of obj.entries) out[key.toLowerCase()] = toPlain(value)
  return out
}

function describeJson(value: JsonValue): string {
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`
  if (typeof value === 'boolean') return `boolean ${value}`
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && value.kind === 'number') return `number ${value.text}`
  return jsonTypeName(value)
}
