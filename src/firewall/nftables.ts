/**
 * nftables mode (EnableNFTables): flannel's `ip flannel-ipv4` / `ip6 flannel-ipv6` tables with
 * chains `postrtg` and `forward`, written as one `nft -f -` transaction per family. Unlike
 * flannel, the rules are also re-checked on resync (`nft list table`) and rewritten if changed.
 */
import { formatCidr, type Family } from '../ip/ip.ts'
import type { Logger } from '../log/logger.ts'
import { WeftError } from '../errors.ts'
import type { CommandRunner } from './command-runner.ts'
import type { Firewall, TrafficIntent } from './firewall.ts'
import { multicastNet } from './rules.ts'

/** `ip flannel-ipv4` or `ip6 flannel-ipv6`. */
export function nftTable(family: Family): { family: 'ip' | 'ip6'; name: string } {
  return family === 4 ? { family: 'ip', name: 'flannel-ipv4' } : { family: 'ip6', name: 'flannel-ipv6' }
}

/** The rules of each chain, in flannel's order and in `nft list` wording. */
export function nftRules(intent: TrafficIntent): { postrtg: string[]; forward: string[] } {
  const ip = nftTable(intent.family).family
  const net = formatCidr(intent.network)
  const pod = formatCidr(intent.subnet)
  const rf = intent.randomFully ? ' fully-random' : ''
  return {
    postrtg: intent.masq
      ? [
          'meta mark 0x00004000 return', // kube-proxy masquerades these itself
          `${ip} saddr ${pod} ${ip} daddr ${net} return`,
          `${ip} saddr ${net} ${ip} daddr ${pod} return`,
          // flannel's nftables rule differs from its iptables one here (!= POD, not != NET)
          `${ip} saddr != ${pod} ${ip} daddr ${net} return`,
          `${ip} saddr ${net} ${ip} daddr != ${multicastNet(intent.family)} masquerade${rf}`,
          `${ip} saddr != ${net} ${ip} daddr ${net} masquerade${rf}`,
        ]
      : [],
    forward: intent.forward ? [`${ip} saddr ${net} accept`, `${ip} daddr ${net} accept`] : [],
  }
}

/** The `nft -f -` transaction that (re)creates the family's table and fills its chains. */
export function nftPayload(intent: TrafficIntent): string {
  const t = nftTable(intent.family)
  const id = `${t.family} ${t.name}`
  const rules = nftRules(intent)
  const lines = [`add table ${id} { comment "rules for ${t.name}" ; }`]
  if (intent.masq) {
    lines.push(
      `add chain ${id} postrtg { type nat hook postrouting priority srcnat ; policy accept ; comment "chain to manage traffic masquerading by flannel" ; }`,
      `flush chain ${id} postrtg`,
      ...rules.postrtg.map((r) => `add rule ${id} postrtg ${r}`),
    )
  }
  if (intent.forward) {
    lines.push(
      `add chain ${id} forward { type filter hook forward priority filter ; policy accept ; comment "chain to accept flannel traffic" ; }`,
      `flush chain ${id} forward`,
      ...rules.forward.map((r) => `add rule ${id} forward ${r}`),
    )
  }
  return lines.join('\n') + '\n'
}

/** Rule lines per chain from `nft list table` output (handles and comments stripped). */
export function parseNftList(text: string): Map<string, string[]> {
  const chains = new Map<string, string[]>()
  let cur: string[] | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    const m = /^chain (\S+) \{$/.exec(line)
    if (m) {
      cur = []
      chains.set(m[1] as string, cur)
    } else if (line === '}') {
      cur = undefined
    } else if (cur && line !== '' && !/^(type |comment |policy )/.test(line)) {
      cur.push(normalizeNft(line))
    }
  }
  return chains
}

/** Canonical form for comparison: no handle, hex without leading zeros. */
export function normalizeNft(rule: string): string {
  return rule.replace(/\s+# handle \d+$/, '').replace(/0x0*([0-9a-f]+)/g, '0x$1').trim()
}

export class NfTablesFirewall implements Firewall {
  readonly kind = 'nftables' as const
  private readonly randomFully = new Map<Family, boolean>()

  constructor(
    private readonly run: CommandRunner,
    private readonly logger: Logger,
  ) {}

  /** flannel's probe: dry-run a masquerade rule with fully-random in a throwaway chain. */
  async supportsRandomFully(family: Family): Promise<boolean> {
    const known = this.randomFully.get(family)
    if (known !== undefined) return known
    const t = nftTable(family)
    const id = `${t.family} ${t.name}`
    const probe = [
      `add table ${id}`,
      `add chain ${id} masqueradeTest { type nat hook postrouting priority srcnat ; }`,
      `add rule ${id} masqueradeTest ${t.family} saddr != ${family === 4 ? '127.0.0.1' : '::1'} masquerade fully-random`,
    ].join('\n')
    const res = await this.run('nft', ['--check', '-f', '-'], probe + '\n')
    const ok = res.code === 0
    if (!ok) this.logger.info('nftables masquerade fully-random not supported', { family, stderr: res.stderr.trim() })
    this.randomFully.set(family, ok)
    return ok
  }

  async apply(intent: TrafficIntent): Promise<void> {
    // chains are flushed in the same transaction, so rules of a stale subnet go with them
    await this.nft(nftPayload(intent), intent.family)
  }

  async check(intent: TrafficIntent): Promise<boolean> {
    const t = nftTable(intent.family)
    const res = await this.run('nft', ['list', 'table', t.family, t.name])
    if (res.code !== 0) return false
    const have = parseNftList(res.stdout)
    const want = nftRules(intent)
    const same = (chain: 'postrtg' | 'forward'): boolean => {
      if (want[chain].length === 0) return true
      const got = have.get(chain) ?? []
      return got.length === want[chain].length && want[chain].every((r, i) => normalizeNft(r) === got[i])
    }
    return same('postrtg') && same('forward')
  }

  async cleanup(families: readonly Family[]): Promise<void> {
    // without the nft binary no flannel table can have been created by this host's tools
    if ((await this.run('nft', ['--version'])).code === 127) return
    for (const family of families) {
      const t = nftTable(family)
      // `add` first makes the delete idempotent within one transaction
      await this.nft(`add table ${t.family} ${t.name}\ndelete table ${t.family} ${t.name}\n`, family)
    }
  }

  private async nft(payload: string, family: Family): Promise<void> {
    this.logger.debug('nft -f -', { payload })
    const res = await this.run('nft', ['-f', '-'], payload)
    if (res.code !== 0) {
      throw new WeftError('FIREWALL_OP_FAILED', `nft failed: ${res.stderr.trim()}`, { details: { code: res.code, family } })
    }
  }
}
