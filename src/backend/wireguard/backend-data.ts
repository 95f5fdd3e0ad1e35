/** wireguard BackendData: `{"PublicKey":"<base64>","Port":51820}` (flannel wireguardLeaseAttrs). */
import { decodeKey } from '../../kernel/wireguard-keys.ts'

export interface WgLeaseData {
  readonly publicKey: string
  /** 0 when absent: older flannel versions wrote no Port (then our own listen port is used). */
  readonly port: number
}

export function encodeWgData(data: WgLeaseData): { PublicKey: string; Port: number } {
  return { PublicKey: data.publicKey, Port: data.port }
}

/** Parses a peer's BackendData (Go's case-insensitive field match); the reason when it is unusable. */
export function decodeWgData(raw: unknown): { ok: true; data: WgLeaseData } | { ok: false; reason: string } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'BackendData is not a JSON object' }
  const fields = new Map(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v]))
  const key = fields.get('publickey')
  if (typeof key !== 'string' || !decodeKey(key)) return { ok: false, reason: 'BackendData.PublicKey is not a WireGuard public key (32 bytes in base64)' }
  const port = fields.get('port') ?? 0
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return { ok: false, reason: 'BackendData.Port is not a UDP port' }
  return { ok: true, data: { publicKey: key, port } }
}
