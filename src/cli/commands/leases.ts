/** `weft leases`: the lease table (subnet, public IP, backend, VTEP MAC, expires in). */
import type { Registry, SubnetRecord } from '../../subnet/etcd/registry.ts'
import { parseSubnetKey } from '../../lease/subnet-key.ts'
import { decodeLeaseAttrs } from '../../lease/lease-codec.ts'
import { formatCidr, formatIp } from '../../ip/ip.ts'
import { errorMessage } from '../../errors.ts'

export interface LeaseRow {
  readonly subnet: string
  readonly ipv6Subnet: string
  readonly publicIP: string
  readonly publicIPv6: string
  readonly backend: string
  readonly vtepMAC: string
  /** Seconds left; null for a reservation (no TTL). */
  readonly expiresIn: number | null
  /** Set when the stored value could not be parsed. */
  readonly error?: string
}

export async function leaseRows(registry: Registry, prefix: string, signal: AbortSignal): Promise<LeaseRow[]> {
  const listing = await registry.listSubnets(prefix, signal)
  // TTLs are looked up concurrently: one request per key, only for this table.
  const records = await Promise.all(listing.entries.map((e) => registry.getSubnet(prefix, e.key, signal)))
  return records.filter((r): r is SubnetRecord => r !== undefined).map(toRow).sort((a, b) => a.subnet.localeCompare(b.subnet, 'en', { numeric: true }))
}

function toRow(record: SubnetRecord): LeaseRow {
  const key = parseSubnetKey(record.key)
  const base = {
    subnet: key ? formatCidr(key.subnet) : record.key,
    ipv6Subnet: key?.ipv6Subnet ? formatCidr(key.ipv6Subnet) : '',
    expiresIn: record.ttlSeconds ?? null,
  }
  try {
    const attrs = decodeLeaseAttrs(record.value)
    const data = attrs.backendData as { VtepMAC?: unknown } | undefined
    return {
      ...base,
      publicIP: attrs.publicIP ? formatIp(attrs.publicIP) : '',
      publicIPv6: attrs.publicIPv6 ? formatIp(attrs.publicIPv6) : '',
      backend: attrs.backendType || '(none)',
      vtepMAC: typeof data?.VtepMAC === 'string' ? data.VtepMAC : '',
    }
  } catch (err) {
    return { ...base, publicIP: '', publicIPv6: '', backend: '', vtepMAC: '', error: errorMessage(err) }
  }
}

export function formatLeaseTable(rows: readonly LeaseRow[]): string {
  const header = ['SUBNET', 'PUBLIC IP', 'BACKEND', 'VTEP MAC', 'EXPIRES IN']
  const lines = rows.map((r) => [
    r.ipv6Subnet ? `${r.subnet} ${r.ipv6Subnet}` : r.subnet,
    r.publicIPv6 ? `${r.publicIP} ${r.publicIPv6}` : r.publicIP,
    r.error ? `invalid: ${r.error}` : r.backend,
    r.vtepMAC || '-',
    r.expiresIn === null ? 'reserved' : duration(r.expiresIn),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)))
  const fmt = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ')
  return [fmt(header), ...lines.map(fmt)].join('\n') + '\n'
}

function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`
}
