/**
 * In-memory Firewall for unit tests: keeps the iptables lines each family would hold, records
 * every call, and lets a test delete a rule "by hand" or make the next call fail.
 */
import type { Family } from '../ip/ip.ts'
import { WeftError } from '../errors.ts'
import type { Firewall, FirewallKind, TrafficIntent } from './firewall.ts'
import { intentRules, ruleLine } from './rules.ts'

export type MemoryFirewallOp =
  | { readonly op: 'apply'; readonly intent: TrafficIntent; readonly stale?: TrafficIntent }
  | { readonly op: 'check'; readonly intent: TrafficIntent; readonly ok: boolean }
  | { readonly op: 'cleanup'; readonly families: readonly Family[] }

export class MemoryFirewall implements Firewall {
  /** Append-only call log. */
  readonly ops: MemoryFirewallOp[] = []
  private readonly lines = new Map<Family, string[]>()
  private failing: 'apply' | 'check' | 'cleanup' | undefined

  constructor(
    readonly kind: FirewallKind = 'iptables',
    private readonly randomFully = true,
  ) {}

  async supportsRandomFully(_family: Family): Promise<boolean> {
    return this.randomFully
  }

  async apply(intent: TrafficIntent, stale?: TrafficIntent): Promise<void> {
    this.ops.push(stale ? { op: 'apply', intent, stale } : { op: 'apply', intent })
    this.maybeFail('apply')
    this.lines.set(intent.family, intentRules(intent).map(ruleLine))
  }

  async check(intent: TrafficIntent): Promise<boolean> {
    this.maybeFail('check')
    const have = this.lines.get(intent.family) ?? []
    const ok = intentRules(intent).every((r) => have.includes(ruleLine(r)))
    this.ops.push({ op: 'check', intent, ok })
    return ok
  }

  async cleanup(families: readonly Family[]): Promise<void> {
    this.ops.push({ op: 'cleanup', families })
    this.maybeFail('cleanup')
    for (const f of families) this.lines.delete(f)
  }

  /** The rule lines currently installed for the family (iptables-save form). */
  rules(family: Family): readonly string[] {
    return this.lines.get(family) ?? []
  }

  /** Removes one installed line, as an operator running `iptables -D` would. */
  deleteRule(family: Family, line: string): void {
    this.lines.set(family, (this.lines.get(family) ?? []).filter((l) => l !== line))
  }

  /** Makes the next call of that kind throw FIREWALL_OP_FAILED. */
  failNext(op: 'apply' | 'check' | 'cleanup'): void {
    this.failing = op
  }

  private maybeFail(op: 'apply' | 'check' | 'cleanup'): void {
    if (this.failing !== op) return
    this.failing = undefined
    throw new WeftError('FIREWALL_OP_FAILED', `injected ${op} failure`)
  }
}
