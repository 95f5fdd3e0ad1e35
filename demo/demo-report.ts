/** Text tables the demo prints (pure). */

/** One row of the lease table. */
export interface LeaseRow {
  subnet: string
  ipv6Subnet?: string
  publicIp: string
  /** BackendType; '' when the lease has none (alloc, udp). */
  backend: string
  /** The host whose underlay address is publicIp, if known. */
  host?: string
}

/** Left-aligned columns separated by two spaces. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: readonly string[]): string => cells.map((s, c) => s.padEnd(widths[c]!)).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** The lease table, sorted by host then subnet. */
export function formatLeases(rows: readonly LeaseRow[]): string {
  const withV6 = rows.some((r) => r.ipv6Subnet)
  // Unknown hosts last; plain code-unit order (localeCompare would put '~' first).
  const cmp = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0)
  const sorted = [...rows].sort((a, b) => cmp(a.host ?? '\uffff', b.host ?? '\uffff') || cmp(a.subnet, b.subnet))
  const header = ['HOST', 'SUBNET', ...(withV6 ? ['IPV6 SUBNET'] : []), 'PUBLIC IP', 'BACKEND']
  return formatTable(header, sorted.map((r) => [r.host ?? '?', r.subnet || '-', ...(withV6 ? [r.ipv6Subnet ?? '-'] : []), r.publicIp, r.backend || '-']))
}

/** Result of pinging from one pod to another. */
export interface PingResult {
  from: string
  to: string
  ok: boolean
  /** Round-trip time of the successful ping, in ms. */
  rttMs?: number
  /** Attempts needed (routes may converge after the first try). */
  attempts: number
}

/** A from × to matrix: `ok 0.21ms`, `FAIL`, `-` on the diagonal. */
export function formatPingMatrix(names: readonly string[], results: readonly PingResult[]): string {
  const cell = (from: string, to: string): string => {
    if (from === to) return '-'
    const r = results.find((x) => x.from === from && x.to === to)
    if (!r) return '?'
    if (!r.ok) return 'FAIL'
    return r.rttMs === undefined ? 'ok' : `ok ${r.rttMs.toFixed(2)}ms`
  }
  return formatTable(['FROM \\ TO', ...names], names.map((from) => [from, ...names.map((to) => cell(from, to))]))
}
