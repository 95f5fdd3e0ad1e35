/**
 * vxlan BackendData, the JSON peers publish in their lease: `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`
 * (IPv6 in BackendV6Data). Pure encode/decode; keys are matched case-insensitively, as Go's
 * encoding/json does when flannel reads them.
 */

/** Decoded BackendData of one family. */
export interface VxlanBackendData {
  readonly vni: number
  /** Lower-case colon form. */
  readonly vtepMac: string
}

/** Decoded data, or why the peer's BackendData is refused. */
export type DecodeResult = { readonly ok: true; readonly data: VxlanBackendData } | { readonly ok: false; readonly reason: string }

/** The value stored in LeaseAttrs.backendData, with flannel's field names and order. */
export function encodeBackendData(data: VxlanBackendData): { VNI: number; VtepMAC: string } {
  return { VNI: data.vni, VtepMAC: data.vtepMac }
}

/** Parses 6-octet MACs written with ':' or '-'; undefined when malformed. */
export function parseMac(text: string): string | undefined {
  const parts = text.split(/[:-]/)
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined
  return parts.join(':').toLowerCase()
}

/** A VTEP MAC must be a unicast, non-zero address (it becomes an FDB and neighbour entry). */
export function isUnicastMac(mac: string): boolean {
  return mac !== '00:00:00:00:00:00' && (parseInt(mac.slice(0, 2), 16) & 1) === 0
}

/** Random locally administered unicast MAC from 6 random bytes (flannel: byte0 = r & 0xfe | 0x02). */
export function macFromRandom(bytes: Uint8Array): string {
  const out = Array.from(bytes.subarray(0, 6))
  if (out.length !== 6) throw new RangeError('a MAC needs 6 random bytes')
  out[0] = ((out[0] as number) & 0xfe) | 0x02
  return out.map((b) => b.toString(16).padStart(2, '0')).join(':')
}

/** Decodes a peer's BackendData; `vni` is ours, and a peer on another VNI is refused. */
export function decodeBackendData(raw: unknown, vni?: number): DecodeResult {
  let value = raw
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value)
    } catch {
      return { ok: false, reason: 'BackendData is not valid JSON' }
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'BackendData is missing or not an object' }
  const fields = new Map(Object.entries(value).map(([k, v]) => [k.toLowerCase(), v]))
  const rawVni = fields.get('vni')
  const rawMac = fields.get('vtepmac')
  if (typeof rawVni !== 'number' || !Number.isInteger(rawVni) || rawVni < 0 || rawVni >= 2 ** 24) {
    return { ok: false, reason: `BackendData.VNI must be an integer in 0..16777215, got ${JSON.stringify(rawVni)}` }
  }
  if (vni !== undefined && rawVni !== vni) return { ok: false, reason: `BackendData.VNI ${rawVni} does not match this network's VNI ${vni}` }
  const mac = typeof rawMac === 'string' ? parseMac(rawMac) : undefined
  if (!mac || !isUnicastMac(mac)) return { ok: false, reason: `BackendData.VtepMAC must be a unicast MAC address, got ${JSON.stringify(rawMac)}` }
  return { ok: true, data: { vni: rawVni, vtepMac: mac } }
}
