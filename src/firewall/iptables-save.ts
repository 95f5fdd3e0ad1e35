/**
 * Pure helpers over iptables-save / iptables-restore text: parse a dump into tables, and build
 * the `--noflush` payload that replaces weft's rules in one COMMIT per table.
 */
import { isOwnChain, ruleLine, type IpTable, type IpTablesRule } from './rules.ts'

export interface TableDump {
  /** Every chain declared in the table (built-in and user). */
  readonly chains: ReadonlySet<string>
  /** The `-A ...` lines in dump order. */
  readonly rules: readonly string[]
}

export type SaveDump = ReadonlyMap<string, TableDump>

/** Parses iptables-save output (any variant; comments and counters ignored). */
export function parseSave(text: string): SaveDump {
  const out = new Map<string, { chains: Set<string>; rules: string[] }>()
  let cur: { chains: Set<string>; rules: string[] } | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('*')) {
      cur = { chains: new Set(), rules: [] }
      out.set(line.slice(1), cur)
    } else if (cur && line.startsWith(':')) {
      cur.chains.add(line.slice(1).split(' ')[0] as string)
    } else if (cur && line.startsWith('-A ')) {
      cur.rules.push(line)
    } else if (line === 'COMMIT') {
      cur = undefined
    }
  }
  return out
}

/** Desired rules that the dump lacks (an own chain missing makes all its rules missing). */
export function missingRules(dump: SaveDump, desired: readonly IpTablesRule[]): IpTablesRule[] {
  return desired.filter((r) => !(dump.get(r.table)?.rules.includes(ruleLine(r)) ?? false))
}

const TABLE_ORDER: readonly IpTable[] = ['nat', 'filter']

/**
 * One iptables-restore --noflush payload: per table, declare (and so flush) weft's own chains,
 * delete every existing copy of the desired and stale rules that live in built-in chains, then
 * append all desired rules. The jump rule thus moves to the end of POSTROUTING/FORWARD and the
 * order is exact, as flannel's bootstrap does, but the whole table changes in one COMMIT.
 */
export function restorePayload(dump: SaveDump, desired: readonly IpTablesRule[], stale: readonly IpTablesRule[] = []): string {
  const lines: string[] = []
  for (const table of TABLE_ORDER) {
    const want = desired.filter((r) => r.table === table)
    if (want.length === 0) continue
    const existing = dump.get(table)?.rules ?? []
    lines.push(`*${table}`)
    for (const chain of new Set(want.map((r) => r.chain))) if (isOwnChain(chain)) lines.push(`:${chain} - [0:0]`)
    const outside = [...want, ...stale.filter((r) => r.table === table)].filter((r) => !isOwnChain(r.chain))
    const deleted = new Set<string>()
    for (const r of outside) {
      const line = ruleLine(r)
      if (deleted.has(line)) continue
      deleted.add(line)
      for (const e of existing) if (e === line) lines.push(`-D ${r.chain} ${r.spec}`)
    }
    for (const r of want) lines.push(ruleLine(r))
    lines.push('COMMIT')
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}

/**
 * Payload removing weft's chains and the jumps into them (mode switch to nftables). Empty when
 * nothing of weft's is present.
 */
export function cleanupPayload(dump: SaveDump): string {
  const lines: string[] = []
  for (const table of TABLE_ORDER) {
    const t = dump.get(table)
    if (!t) continue
    const own = [...t.chains].filter(isOwnChain)
    const jumps = t.rules.filter((l) => own.some((c) => l.endsWith(` -j ${c}`)))
    if (own.length === 0 && jumps.length === 0) continue
    lines.push(`*${table}`)
    for (const j of jumps) lines.push('-D' + j.slice(2))
    for (const c of own) lines.push(`-F ${c}`, `-X ${c}`)
    lines.push('COMMIT')
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}
