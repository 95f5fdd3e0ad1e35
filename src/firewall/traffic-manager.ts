/**
 * Traffic rules for the daemon (flannel main.go steps 12–15): clean the other mode's artefacts,
 * install masquerade/forward rules atomically (after removing rules built from the previous
 * subnet.env values), add the blackhole route, then re-check every resync period and restore
 * whatever was removed. One ruleset read per family per period, never one call per rule.
 */
import type { Family, IpNet } from '../ip/ip.ts'
import { formatCidr, netEqual } from '../ip/ip.ts'
import type { NetworkConfig } from '../config/network-config.ts'
import type { Lease } from '../lease/lease.ts'
import type { Kernel } from '../kernel/kernel.ts'
import type { Logger } from '../log/logger.ts'
import type { Clock } from '../util/clock.ts'
import { isAbort } from '../util/abort.ts'
import { execRunner, type CommandRunner } from './command-runner.ts'
import type { Firewall, FirewallKind, TrafficIntent } from './firewall.ts'
import { IpTablesFirewall } from './iptables.ts'
import { NfTablesFirewall } from './nftables.ts'
import { ensureBlackholeRoutes } from './blackhole.ts'

export interface TrafficOptions {
  /** --ip-masq */
  readonly ipMasq: boolean
  /** --ip-masq-fully-random-disable */
  readonly ipMasqFullyRandomDisable: boolean
  /** --iptables-forward-rules (flannel default true) */
  readonly forwardRules: boolean
  /** --ip-blackhole-route */
  readonly blackholeRoute: boolean
  /** --iptables-resync (flannel default 5) */
  readonly resyncSeconds: number
}

/** Network/subnet values read from the previous subnet.env (FLANNEL_NETWORK, FLANNEL_SUBNET, ...). */
export interface PreviousSubnets {
  readonly ipv4Network?: IpNet
  readonly ipv4Subnet?: IpNet
  readonly ipv6Network?: IpNet
  readonly ipv6Subnet?: IpNet
}

export interface TrafficRulesDeps {
  readonly options: TrafficOptions
  readonly config: NetworkConfig
  readonly lease: Lease
  readonly previous: PreviousSubnets
  readonly kernel: Pick<Kernel, 'listRoutes' | 'replaceRoute'>
  readonly logger: Logger
  readonly clock: Clock
  /** Runs iptables/nft; default spawns them directly (tests run them in a netns). */
  readonly runner?: CommandRunner
  /** Prebuilt firewalls per mode (tests); built from `runner` when absent. */
  readonly firewalls?: Partial<Record<FirewallKind, Firewall>>
}

/** Desired intents for the enabled families, plus the stale intents they replace. */
export function buildIntents(
  deps: Pick<TrafficRulesDeps, 'options' | 'config' | 'lease' | 'previous'>,
  randomFully: (family: Family) => boolean,
): { intent: TrafficIntent; stale?: TrafficIntent }[] {
  const { options, config, lease, previous } = deps
  const out: { intent: TrafficIntent; stale?: TrafficIntent }[] = []
  const families: [Family, IpNet | undefined, IpNet | undefined, IpNet | undefined, IpNet | undefined][] = [
    [4, config.enableIPv4 ? config.ipv4?.network : undefined, lease.subnet, previous.ipv4Network, previous.ipv4Subnet],
    [6, config.enableIPv6 ? config.ipv6?.network : undefined, lease.ipv6Subnet, previous.ipv6Network, previous.ipv6Subnet],
  ]
  for (const [family, network, subnet, oldNet, oldSub] of families) {
    if (!network || !subnet) continue
    const base = { family, masq: options.ipMasq, forward: options.forwardRules, randomFully: options.ipMasq && randomFully(family) }
    const intent: TrafficIntent = { ...base, network, subnet }
    const changed = oldNet && oldSub && (!netEqual(oldNet, network) || !netEqual(oldSub, subnet))
    out.push(changed ? { intent, stale: { ...base, network: oldNet, subnet: oldSub } } : { intent })
  }
  return out
}

/** Builds (or takes) the firewall for the chosen mode and the one for the other mode. */
async function firewalls(deps: Pick<TrafficRulesDeps, 'runner' | 'firewalls'>, mode: FirewallKind, log: Logger): Promise<{ chosen: Firewall; other?: Firewall }> {
  const run = deps.runner ?? execRunner
  const make = async (kind: FirewallKind): Promise<Firewall> =>
    deps.firewalls?.[kind] ?? (kind === 'nftables' ? new NfTablesFirewall(run, log) : await IpTablesFirewall.create(run, log))
  const otherKind: FirewallKind = mode === 'nftables' ? 'iptables' : 'nftables'
  const [chosen, other] = await Promise.allSettled([make(mode), make(otherKind)])
  if (chosen.status === 'rejected') throw chosen.reason
  if (other.status === 'rejected') {
    // e.g. an nft-only host without the iptables binary: nothing of that mode can exist
    log.debug('other firewall mode unavailable', { mode: otherKind }, other.reason)
    return { chosen: chosen.value }
  }
  return { chosen: chosen.value, other: other.value }
}

/** The firewall of the configured mode, and the other mode's for its clean-up. */
interface PreparedFirewall {
  readonly chosen?: Firewall
  /** The other mode's firewall, whose leftovers are removed once our rules are in place. */
  readonly other?: Firewall
  /** Why no firewall could be set up (missing tools); fatal only when rules are wanted. */
  readonly error?: unknown
}

/** Detection: which iptables variant, whether nft is there; needs only the config. */
async function prepareFirewall(deps: Pick<TrafficRulesDeps, 'config' | 'logger' | 'runner' | 'firewalls'>): Promise<PreparedFirewall> {
  const log = deps.logger.child({ component: 'firewall' })
  const { config } = deps
  const mode: FirewallKind = config.enableNFTables ? 'nftables' : 'iptables'
  try {
    const fw = await firewalls(deps, mode, log)
    return { chosen: fw.chosen, ...(fw.other ? { other: fw.other } : {}) }
  } catch (err) {
    return { error: err }
  }
}

/**
 * Sets up the traffic rules and resolves once they are first applied (rejects if that fails,
 * as flannel exits); then keeps re-checking every `resyncSeconds` until the signal aborts.
 * The other mode's leftovers are removed after that, off the path to subnet.env (its nft or
 * iptables-restore run took ~19 ms there): `otherModeCleaned` settles when that is done.
 */
export async function startTrafficRules(deps: TrafficRulesDeps, signal: AbortSignal): Promise<{ otherModeCleaned: Promise<void> }> {
  const log = deps.logger.child({ component: 'firewall' })
  const { options, config, lease } = deps
  const mode: FirewallKind = config.enableNFTables ? 'nftables' : 'iptables'
  const families: Family[] = []
  if (config.enableIPv4 && lease.subnet) families.push(4)
  if (config.enableIPv6 && lease.ipv6Subnet) families.push(6)
  const wantRules = options.ipMasq || options.forwardRules

  let plan: { intent: TrafficIntent; stale?: TrafficIntent }[] = []
  const prepared = await prepareFirewall(deps)
  const chosen = prepared.chosen
  if (prepared.error !== undefined) {
    // without masq/forward rules there is nothing to install, so a missing tool is not fatal
    if (wantRules) throw prepared.error
    log.warn('firewall unavailable; skipping cleanup of the other mode', { mode }, prepared.error)
  }
  if (wantRules && chosen) {
    const rf = new Map<Family, boolean>()
    for (const f of families) rf.set(f, !options.ipMasqFullyRandomDisable && (await chosen.supportsRandomFully(f)))
    plan = buildIntents(deps, (f) => rf.get(f) ?? false)
    for (const { intent, stale } of plan) {
      if (stale) log.info('removing rules of the previous network/subnet', describe(stale))
      await chosen.apply(intent, stale)
      log.info('traffic rules applied', { mode, ...describe(intent) })
    }
  }
  const blackholes = options.blackholeRoute ? [lease.subnet, lease.ipv6Subnet].filter((s): s is IpNet => s !== undefined) : []
  if (blackholes.length > 0) await ensureBlackholes(deps, blackholes, log)
  const cleaned = cleanupOtherSoon(prepared.other, config, log)
  if (plan.length === 0 && blackholes.length === 0) return { otherModeCleaned: cleaned }

  resyncLoop(deps, chosen, plan.map((p) => p.intent), blackholes, log, signal).catch((err: unknown) => {
    log.error('traffic rule resync stopped', {}, err)
  })
  return { otherModeCleaned: cleaned }
}

/** Scheduled, not started: the daemon writes subnet.env in the continuation of our result. */
function cleanupOtherSoon(other: Firewall | undefined, config: NetworkConfig, log: Logger): Promise<void> {
  if (!other) return Promise.resolve()
  const families: Family[] = [...(config.enableIPv4 ? [4 as const] : []), ...(config.enableIPv6 ? [6 as const] : [])]
  return new Promise<void>((resolve) => setImmediate(() => void cleanupOther(other, families, log).then(resolve)))
}

async function cleanupOther(other: Firewall, families: readonly Family[], log: Logger): Promise<void> {
  try {
    await other.cleanup(families)
  } catch (err) {
    log.warn('could not clean up rules of the other firewall mode', { mode: other.kind }, err)
  }
}

async function ensureBlackholes(deps: TrafficRulesDeps, subnets: IpNet[], log: Logger): Promise<void> {
  try {
    await ensureBlackholeRoutes(deps.kernel, subnets, log)
  } catch (err) {
    log.error('failed to add blackhole route', { subnets: subnets.map(formatCidr).join(',') }, err)
  }
}

async function resyncLoop(
  deps: TrafficRulesDeps,
  fw: Firewall | undefined,
  intents: readonly TrafficIntent[],
  blackholes: IpNet[],
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const period = Math.max(1, deps.options.resyncSeconds) * 1000
  while (!signal.aborted) {
    try {
      await deps.clock.sleep(period, signal)
    } catch (err) {
      if (isAbort(err, signal)) return
      throw err
    }
    for (const intent of fw ? intents : []) {
      try {
        if (await fw!.check(intent)) continue
        log.warn('some rules are missing; deleting and recreating rules', describe(intent))
        await fw!.apply(intent)
      } catch (err) {
        log.error('failed to resync traffic rules', describe(intent), err)
      }
    }
    if (blackholes.length > 0) await ensureBlackholes(deps, blackholes, log)
  }
}

function describe(i: TrafficIntent): Record<string, string | number | boolean> {
  return { family: i.family, network: formatCidr(i.network), subnet: formatCidr(i.subnet), masq: i.masq, forward: i.forward, randomFully: i.randomFully }
}
