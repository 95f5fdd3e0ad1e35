/** FORWARD policy and iptables backends (flannel#1317: legacy vs nf_tables). */
import type { DoctorFacts, IptablesFacts } from '../facts.ts'
import type { Finding } from '../finding.ts'

/**
 * Parses `iptables-save` output of one variant. The kernel runs the legacy and the nft tables
 * one after the other, so a DROP policy in either blocks forwarding unless that same variant
 * accepts the cluster network.
 */
export function parseIptablesSave(variant: 'legacy' | 'nft', text: string, network: string | undefined): IptablesFacts {
  let table = ''
  let forwardPolicy: string | undefined
  let flannelRules = 0
  const chainsAccepting = new Set<string>()
  const jumps: Array<{ chain: string; target: string }> = []
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) { table = line.slice(1).trim(); continue }
    if (table === 'filter' && line.startsWith(':FORWARD ')) forwardPolicy = line.split(' ')[1]
    if (!line.startsWith('-A ')) continue
    if (/(^-A FLANNEL-)|(-j FLANNEL-)/.test(line)) flannelRules++
    if (table !== 'filter') continue
    const chain = line.split(' ')[1] as string
    const target = /-j (\S+)/.exec(line)?.[1]
    if (!target) continue
    const bare = line.replace(/ -m comment --comment ("[^"]*"|\S+)/, '')
    const forNetwork = network !== undefined && (bare.includes(`-s ${network} `) || bare.includes(`-d ${network} `))
    if (target === 'ACCEPT' && (forNetwork || bare === `-A ${chain} -j ACCEPT`)) chainsAccepting.add(chain)
    else jumps.push({ chain, target })
  }
  // FORWARD accepts when it, or a chain it jumps to, accepts the network.
  const accepts = (chain: string, depth = 0): boolean =>
    chainsAccepting.has(chain) || (depth < 5 && jumps.some((j) => j.chain === chain && accepts(j.target, depth + 1)))
  return { variant, ...(forwardPolicy ? { forwardPolicy } : {}), flannelRules, acceptsNetwork: accepts('FORWARD') }
}

export function checkForwardDrop(f: DoctorFacts): Finding[] {
  return f.iptables.filter((t) => t.forwardPolicy === 'DROP' && !t.acceptsNetwork).map((t) => ({
    code: 'forward-drop' as const, severity: 'error' as const,
    problem: `the FORWARD policy is DROP in iptables-${t.variant} and no rule there accepts ${f.network ?? 'the cluster network'}${f.forwardRules ? '' : ' (weftd runs with --iptables-forward-rules=false)'}: pod traffic between hosts is dropped`,
    fix: `run weftd with --iptables-forward-rules=true (the default), or add: iptables${t.variant === 'legacy' ? '-legacy' : ''} -A FORWARD -s ${f.network ?? '<network>'} -j ACCEPT and -d ${f.network ?? '<network>'} -j ACCEPT`,
  }))
}

export function checkIptablesBackends(f: DoctorFacts): Finding[] {
  const holders = [
    ...f.iptables.filter((t) => t.flannelRules > 0).map((t) => `iptables-${t.variant} (${t.flannelRules} FLANNEL rules)`),
    ...f.nftTables.map((t) => `nftables table ${t}`),
  ]
  if (holders.length < 2) return []
  return [{
    code: 'iptables-backend-mismatch', severity: 'error',
    problem: `flannel rules live in more than one firewall backend: ${holders.join(', ')}; the kernel runs both, and the stale set masquerades or drops what the live one allows`,
    fix: 'keep one backend: make iptables (update-alternatives --set iptables) match what kube-proxy uses, delete the FLANNEL-* chains from the other (or set EnableNFTables to match), then restart weftd',
  }]
}
