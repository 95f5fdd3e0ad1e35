/**
 * The cluster picture from the hosts' probe rows, pure: every host any row names, and one cell
 * per ordered pair (from ≠ to). A cell is the `from` host's latest probe of `to`; a host whose row
 * could not be read, or a pair it does not probe, is `unknown`.
 */
import type { ProbeRow, ProbeState } from './probe-row.ts'

export interface HostView {
  /** Public IP: the id in data-from / data-to. */
  readonly id: string
  /** Where its row was read from. */
  readonly endpoint?: string
  readonly subnet?: string
  readonly backend?: string
  readonly mtu?: number
  /** 'ready', 'starting' (not ready yet) or 'unreachable' (its health port did not answer). */
  readonly health: 'ready' | 'starting' | 'unreachable'
  readonly error?: string
  readonly leaseExpiresAt?: string | null
  /** The daemon's last logged error. */
  readonly lastError?: string
  /** Kernel entries weftd put back (counted with --metrics-addr). */
  readonly repairs?: number
  /** Epoch ms of its row. */
  readonly at?: number
}

export interface CellView {
  readonly from: string
  readonly to: string
  readonly state: ProbeState
  readonly rttMs?: number
}

export interface ClusterView {
  readonly at: number
  readonly hosts: readonly HostView[]
  readonly cells: readonly CellView[]
}

/** One endpoint's latest answer: its row, or why there is none. */
export type Fetched = { readonly endpoint: string; readonly row: ProbeRow } | { readonly endpoint: string; readonly error: string; readonly host?: string }

export function clusterView(fetched: readonly Fetched[], at: number): ClusterView {
  const hosts = new Map<string, HostView>()
  const rows = new Map<string, ProbeRow>()
  for (const f of fetched) {
    if ('row' in f) {
      rows.set(f.row.host, f.row)
      hosts.set(f.row.host, {
        id: f.row.host, endpoint: f.endpoint, backend: f.row.backend, health: f.row.ready ? 'ready' : 'starting', at: f.row.at,
        ...(f.row.subnet ? { subnet: f.row.subnet } : {}), ...(f.row.mtu ? { mtu: f.row.mtu } : {}),
        ...(f.row.leaseExpiresAt !== undefined ? { leaseExpiresAt: f.row.leaseExpiresAt } : {}),
        ...(f.row.lastError ? { lastError: `${f.row.lastError.time} ${f.row.lastError.message}` } : {}),
        ...(f.row.repairs !== undefined ? { repairs: f.row.repairs } : {}),
      })
    } else {
      const id = f.host ?? f.endpoint
      hosts.set(id, { id, endpoint: f.endpoint, health: 'unreachable', error: f.error })
    }
  }
  // Peers that only appear in other hosts' rows (no endpoint given for them).
  for (const row of rows.values()) {
    for (const p of row.probes) if (!hosts.has(p.to)) hosts.set(p.to, { id: p.to, subnet: p.subnet, health: 'unreachable', error: 'no endpoint for this host' })
  }
  const ids = [...hosts.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
  const cells: CellView[] = []
  for (const from of ids) {
    const row = rows.get(from)
    for (const to of ids) {
      if (to === from) continue
      const probe = row?.probes.find((p) => p.to === to)
      cells.push({ from, to, state: probe?.state ?? 'unknown', ...(probe?.rttMs !== undefined ? { rttMs: probe.rttMs } : {}) })
    }
  }
  return { at, hosts: ids.map((id) => hosts.get(id)!), cells }
}
