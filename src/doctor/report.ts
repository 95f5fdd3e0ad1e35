/** The doctor's output: a table for people, JSON (--json) for scripts. */
import type { DoctorFacts } from './facts.ts'
import type { Finding } from './finding.ts'

export interface DoctorReport {
  readonly host: string
  readonly mode: 'etcd' | 'kube'
  readonly backend: string
  readonly ok: boolean
  readonly findings: readonly Finding[]
  /** Each peer's probes: what the findings were drawn from. */
  readonly peers: ReadonlyArray<{ name: string; publicIp?: string; subnet?: string; underlay?: string; overlay?: string }>
}

const state = (p: { ok: boolean; rttMs?: number } | undefined): string | undefined =>
  p === undefined ? undefined : p.ok ? `ok${p.rttMs !== undefined ? ` ${p.rttMs.toFixed(2)} ms` : ''}` : 'fail'

export function buildReport(facts: DoctorFacts, findings: readonly Finding[]): DoctorReport {
  return {
    host: facts.host, mode: facts.mode, backend: facts.backendType, ok: findings.length === 0, findings,
    peers: facts.peers.map((p) => {
      const underlay = state(p.underlay)
      const overlay = state(p.overlay)
      return { name: p.name, ...(p.publicIp ? { publicIp: p.publicIp } : {}), ...(p.subnet ? { subnet: p.subnet } : {}), ...(underlay ? { underlay } : {}), ...(overlay ? { overlay } : {}) }
    }),
  }
}

export function formatReport(r: DoctorReport): string {
  const head = `weft doctor on ${r.host} (${r.mode}, ${r.backend}, ${r.peers.length} peer${r.peers.length === 1 ? '' : 's'})`
  if (r.findings.length === 0) return `${head}: no problem found\n`
  const width = Math.max(...r.findings.map((f) => f.code.length))
  const lines = r.findings.flatMap((f) => [
    `${f.severity === 'error' ? 'ERROR' : 'WARN '}  ${f.code.padEnd(width)}  ${f.problem}`,
    `${' '.repeat(7 + width)}  fix: ${f.fix}`,
  ])
  return `${head}: ${r.findings.length} finding${r.findings.length === 1 ? '' : 's'}\n${lines.join('\n')}\n`
}
