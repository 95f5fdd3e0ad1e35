/**
 * iptables mode. Differences from flannel, on purpose:
 * - one iptables-save per family per check instead of one `iptables -C` per rule (flannel's
 *   5 s resync of ~10 `-C` calls is what caused xtables-lock storms, flannel#933/#988);
 * - every change is one `iptables-restore --noflush --wait` run (atomic per table);
 * - on hosts with both iptables-nft and iptables-legacy, the variant that already holds
 *   kube-proxy's or flannel's rules is used (flannel#1317), and the choice is logged.
 */
import type { Family } from '../ip/ip.ts'
import type { Logger } from '../log/logger.ts'
import { WeftError } from '../errors.ts'
import type { CommandRunner } from './command-runner.ts'
import type { Firewall, TrafficIntent } from './firewall.ts'
import { intentRules } from './rules.ts'
import { cleanupPayload, missingRules, parseSave, restorePayload, type SaveDump } from './iptables-save.ts'

export type IpTablesVariant = 'nft' | 'legacy'

export interface IpTablesTools {
  readonly variant: IpTablesVariant
  /** [major, minor, patch] of `iptables --version`. */
  readonly version: readonly [number, number, number]
  /** Binary names per family: save and restore. */
  readonly save: Readonly<Record<Family, string>>
  readonly restore: Readonly<Record<Family, string>>
}

/** Parses `iptables v1.8.9 (nf_tables)`; undefined when the text is not a version line. */
export function parseIpTablesVersion(text: string): { version: [number, number, number]; variant?: IpTablesVariant } | undefined {
  const m = /v(\d+)\.(\d+)\.(\d+)(?:\s+\((nf_tables|legacy)\))?/.exec(text)
  if (!m) return undefined
  const version: [number, number, number] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const variant = m[4] === 'nf_tables' ? 'nft' : m[4] === 'legacy' ? 'legacy' : undefined
  return variant ? { version, variant } : { version }
}

/** `--random-fully` arrived in iptables 1.6.2 (go-iptables HasRandomFully). */
export function versionHasRandomFully(v: readonly [number, number, number]): boolean {
  const [a, b, c] = v
  return a > 1 || (a === 1 && (b > 6 || (b === 6 && c >= 2)))
}

/** Lines that belong to kube-proxy or flannel/weft: the evidence of which variant is in use. */
export function countOwnedRules(saveText: string): number {
  return saveText.split('\n').filter((l) => l.startsWith('-A ') && /KUBE-|FLANNEL-/.test(l)).length
}

function toolNames(variant: IpTablesVariant | undefined): Pick<IpTablesTools, 'save' | 'restore'> {
  const sfx = variant === undefined ? '' : `-${variant}`
  return {
    save: { 4: `iptables${sfx}-save`, 6: `ip6tables${sfx}-save` },
    restore: { 4: `iptables${sfx}-restore`, 6: `ip6tables${sfx}-restore` },
  }
}

/** Picks the iptables variant: the one holding existing kube/flannel rules, else the default. */
export async function detectIpTables(run: CommandRunner, logger: Logger): Promise<IpTablesTools> {
  const res = await run('iptables', ['--version'])
  const parsed = res.code === 0 ? parseIpTablesVersion(res.stdout + res.stderr) : undefined
  if (!parsed) {
    throw new WeftError('FIREWALL_OP_FAILED', 'iptables not usable; install iptables or set EnableNFTables in the network config', {
      details: { code: res.code, stderr: res.stderr.trim() },
    })
  }
  const fallback = parsed.variant ?? 'legacy'
  if (!parsed.variant) {
    // iptables < 1.8 only has the legacy backend and no suffixed binaries
    logger.info('iptables variant selected', { variant: 'legacy', version: parsed.version.join('.'), reason: 'only variant' })
    return { variant: 'legacy', version: parsed.version, ...toolNames(undefined) }
  }
  const counts: Record<IpTablesVariant, number> = { nft: 0, legacy: 0 }
  // Four independent dumps: run them at once (each is a process spawn, start-up is waiting).
  const dumps = (['nft', 'legacy'] as const).flatMap((variant) => ([4, 6] as const).map(async (fam) => {
    const out = await run(toolNames(variant).save[fam], [])
    if (out.code === 0) counts[variant] += countOwnedRules(out.stdout)
  }))
  await Promise.all(dumps)
  const variant: IpTablesVariant = counts.nft > counts.legacy ? 'nft' : counts.legacy > counts.nft ? 'legacy' : fallback
  const reason = counts.nft === counts.legacy ? 'default of iptables --version' : 'holds existing kube/flannel rules'
  logger.info('iptables variant selected', {
    variant, version: parsed.version.join('.'), reason, nftRules: counts.nft, legacyRules: counts.legacy,
  })
  // the plain names point at the default variant; use suffixed names only for the other one
  return { variant, version: parsed.version, ...toolNames(variant === fallback ? undefined : variant) }
}

export class IpTablesFirewall implements Firewall {
  readonly kind = 'iptables' as const

  constructor(
    private readonly run: CommandRunner,
    readonly tools: IpTablesTools,
    private readonly logger: Logger,
  ) {}

  /** Detects the variant and returns a ready firewall. */
  static async create(run: CommandRunner, logger: Logger): Promise<IpTablesFirewall> {
    return new IpTablesFirewall(run, await detectIpTables(run, logger), logger)
  }

  async supportsRandomFully(_family: Family): Promise<boolean> {
    return versionHasRandomFully(this.tools.version)
  }

  /** One iptables-save for the family. */
  async dump(family: Family): Promise<SaveDump> {
    const res = await this.run(this.tools.save[family], [])
    if (res.code !== 0) {
      throw new WeftError('FIREWALL_OP_FAILED', `${this.tools.save[family]} failed: ${res.stderr.trim()}`, { details: { code: res.code } })
    }
    return parseSave(res.stdout)
  }

  async apply(intent: TrafficIntent, stale?: TrafficIntent): Promise<void> {
    const desired = intentRules(intent)
    if (desired.length === 0) return
    const payload = restorePayload(await this.dump(intent.family), desired, stale ? intentRules(stale) : [])
    await this.restore(intent.family, payload)
  }

  async check(intent: TrafficIntent): Promise<boolean> {
    const missing = missingRules(await this.dump(intent.family), intentRules(intent))
    if (missing.length > 0) this.logger.debug('iptables rules missing', { family: intent.family, count: missing.length })
    return missing.length === 0
  }

  async cleanup(families: readonly Family[]): Promise<void> {
    for (const family of families) {
      const payload = cleanupPayload(await this.dump(family))
      if (payload !== '') await this.restore(family, payload)
    }
  }

  private async restore(family: Family, payload: string): Promise<void> {
    const bin = this.tools.restore[family]
    this.logger.debug('iptables-restore', { bin, payload })
    // --wait for iptables-restore arrived with 1.6.2, like --random-fully
    const args = versionHasRandomFully(this.tools.version) ? ['--noflush', '--wait'] : ['--noflush']
    const res = await this.run(bin, args, payload)
    if (res.code !== 0) {
      throw new WeftError('FIREWALL_OP_FAILED', `${bin} failed: ${res.stderr.trim()}`, { details: { code: res.code, family } })
    }
  }
}
