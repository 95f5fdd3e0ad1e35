/**
 * What `weft doctor` reports. Codes are stable (scripts and docs/troubleshooting.md key on them);
 * each finding says what is wrong with its evidence, and the fix, in one line each.
 */
export const FINDING_CODES = [
  'overlay-unreachable',
  'mtu-mismatch',
  'subnet-env-missing',
  'subnet-env-stale',
  'vtep-mac-drift',
  'duplicate-public-ip',
  'wrong-interface',
  'ip-forward-off',
  'br-netfilter-missing',
  'forward-drop',
  'checksum-offload-bug',
  'iptables-backend-mismatch',
  'lease-expiring',
  'podcidr-unassigned',
  'kernel-state-missing',
] as const

export type FindingCode = (typeof FINDING_CODES)[number]

/** error: traffic is (or will be) broken; warning: a risk or a degraded path. */
export type Severity = 'error' | 'warning'

export interface Finding {
  readonly code: FindingCode
  readonly severity: Severity
  /** What is wrong, with the evidence (which peer, which value). */
  readonly problem: string
  /** How to fix it. */
  readonly fix: string
}

/** Exit status: 0 nothing found, 1 something found (2, cannot run, is the caller's). */
export function exitCodeFor(findings: readonly Finding[]): 0 | 1 {
  return findings.length === 0 ? 0 : 1
}
