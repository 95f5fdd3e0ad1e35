/**
 * The composition root: flannel's start-up sequence (reference §0) as small steps over injected
 * parts. Nothing here touches the OS directly; `cli/weftd.ts` builds the real parts.
 */
import type { Backend, BackendDefinition, ExternalInterface, Network } from '../backend/backend.ts'
import type { Family } from '../ip/ip.ts'
import type { NetworkConfig } from '../config/network-config.ts'
import type { Kernel } from '../kernel/kernel.ts'
import type { Lease } from '../lease/lease.ts'
import type { Logger } from '../log/logger.ts'
import type { SubnetManager } from '../subnet/subnet-manager.ts'
import type { BackendRecorder, LeaseRecorder } from '../metrics/recorder.ts'
import { msSinceSpawn, type Clock } from '../util/clock.ts'
import { WeftError, errorMessage, isWeftError } from '../errors.ts'
import { isAbort, whenAborted } from '../util/abort.ts'
import { keepLease } from './lease-renewer.ts'
import { formatCidr } from '../ip/ip.ts'
import { renderSubnetEnv } from '../subnet/subnet-file.ts'

export interface DaemonSettings {
  readonly subnetFile: string
  readonly renewMarginMinutes: number
  readonly ipMasq: boolean
  /**
   * Install the traffic rules before subnet.env is written, as flanneld does (it sets up masquerade
   * and forward rules first). When no masquerade/forward rules are wanted there is nothing CNI's
   * pods depend on, so the firewall housekeeping (detection, the other mode's clean-up, the
   * blackhole route) runs after subnet.env and stays off the start-up path.
   */
  readonly trafficRulesFirst?: boolean
  /** Delay between attempts to read the network config (flannel: 1 s). */
  readonly configRetryMs?: number
}

export interface SubnetEnvInput {
  readonly config: NetworkConfig
  readonly lease: Lease
  readonly mtu: number
  readonly ipMasq: boolean
}

export interface DaemonParts {
  readonly subnetManager: SubnetManager
  readonly kernel: Kernel
  readonly logger: Logger
  readonly clock: Clock
  readonly backendDefinition: (type: string) => BackendDefinition | undefined
  /** Adapts the runtime to the chosen backend before it starts (V8's optimizing compiler); optional. */
  readonly tuneRuntime?: (definition: BackendDefinition) => void
  /** Chooses the underlay interface for the enabled families. */
  readonly selectInterface: (families: readonly Family[]) => Promise<ExternalInterface>
  /** Writes subnet.env for CNI (atomic). */
  readonly writeSubnetEnv: (input: SubnetEnvInput) => Promise<void>
  /** Pre-flight checks that may warn or refuse (br_netfilter); optional. */
  readonly preflight?: (config: NetworkConfig) => Promise<void>
  /** Masquerade/forward rules, blackhole route: resolves once applied, keeps resyncing until abort. */
  readonly trafficRules?: (config: NetworkConfig, lease: Lease, signal: AbortSignal) => Promise<{ running: Promise<void> }>
  /** Called once subnet.env is written (readiness). */
  readonly onReady?: () => void
  /** The backend's metrics; absent when metrics are off. */
  readonly metrics?: BackendRecorder
  /** Told of renewals and the lease's expiry (metrics, /status). */
  readonly leaseRecorder?: LeaseRecorder
}

export type DaemonOutcome = 'stopped' | 'lease-revoked'

/** Runs until the signal aborts (resolves 'stopped') or our lease is revoked; rejects on fatal errors. */
export async function runDaemon(settings: DaemonSettings, parts: DaemonParts, signal: AbortSignal): Promise<DaemonOutcome> {
  const log = parts.logger
  const config = await fetchConfig(settings, parts, signal)
  const families = enabledFamilies(config)
  await parts.preflight?.(config)
  const extIface = await parts.selectInterface(families)

  const inner = new AbortController()
  const unlisten = whenAborted(signal, () => inner.abort(signal.reason))
  const tasks: Promise<unknown>[] = []
  const background: Promise<unknown>[] = []
  const rulesFirst = settings.trafficRulesFirst ?? true
  try {
    // The firewall work starts only once the lease is in the store: its tool detection spawns
    // processes, whose synchronous cost would otherwise delay the lease that every other host
    // waits for (flannel, too, sets up its rules after RegisterNetwork).
    const network = await registerNetwork(config, extIface, parts, signal)
    const lease = network.lease
    log.info('lease acquired', { subnet: lease.subnet && formatCidr(lease.subnet), ipv6Subnet: lease.ipv6Subnet && formatCidr(lease.ipv6Subnet), mtu: network.mtu, sinceSpawnMs: msSinceSpawn() })
    const startRules = (): Promise<{ running: Promise<void> }> | undefined => parts.trafficRules?.(config, lease, inner.signal)
    // The peers are programmed while the firewall work runs (its tool detection spawns processes
    // and takes ~100 ms): routes to other hosts need no local rule, and no pod exists before
    // subnet.env, which still waits for the rules as in flannel.
    const running = network.run(inner.signal)
    // Handled by the race below; until then the rules are awaited, and a failure meanwhile must
    // not be an unhandled rejection (which ends the process).
    running.catch(() => {})
    tasks.push(running)
    if (rulesFirst) {
      const rules = await startRules()
      if (rules) tasks.push(rules.running)
    }
    try {
      await parts.writeSubnetEnv({ config, lease, mtu: network.mtu, ipMasq: settings.ipMasq })
      parts.onReady?.()
    } catch (err) {
      // flannel treats this as a warning: the data plane works, only CNI lacks its file.
      log.warn('failed to write subnet file', { path: settings.subnetFile }, err)
    }
    const lateRules = rulesFirst ? undefined : startRules()
    if (lateRules) tasks.push(lateRules.then((rules) => rules.running))
    const keeper = keepLease({ subnetManager: parts.subnetManager, lease, renewMarginMinutes: settings.renewMarginMinutes, logger: log.child({ component: 'lease' }), clock: parts.clock, ...(parts.leaseRecorder ? { metrics: parts.leaseRecorder } : {}) }, inner.signal)
    tasks.push(keeper)
    const completion = parts.subnetManager.completeLease?.(lease, inner.signal)
    if (completion) {
      // Not raced with the tasks: it finishes early by design.
      background.push(completion.catch((err: unknown) => { if (!inner.signal.aborted) log.warn('could not complete the lease', {}, err) }))
    }
    // sinceSpawnMs: process uptime, so operators see start-up cost
    log.info('running', { backend: config.backend.type, sinceSpawnMs: msSinceSpawn() })
    await Promise.race(tasks.map((t) => t.then(() => { if (!inner.signal.aborted) throw new WeftError('KERNEL_OP_FAILED', 'a daemon task ended unexpectedly') })))
    return 'stopped'
  } catch (err) {
    if (isWeftError(err, 'LEASE_REVOKED')) {
      log.warn('lease has been revoked; shutting down daemon', { reason: errorMessage(err) })
      return 'lease-revoked'
    }
    if (isAbort(err, inner.signal) || signal.aborted) return 'stopped'
    throw err
  } finally {
    unlisten()
    inner.abort(new Error('daemon stopping'))
    // Let every task observe the abort before the caller closes shared resources.
    await Promise.allSettled([...tasks, ...background])
  }
}

/** flannel retries the config read every second forever: the config may be written after start. */
async function fetchConfig(settings: DaemonSettings, parts: DaemonParts, signal: AbortSignal): Promise<NetworkConfig> {
  let lastMessage = ''
  for (;;) {
    try {
      return await parts.subnetManager.getNetworkConfig(signal)
    } catch (err) {
      if (signal.aborted) throw signal.reason
      const message = errorMessage(err)
      if (message !== lastMessage) {
        parts.logger.error('failed to retrieve network config; retrying', { retryInMs: settings.configRetryMs ?? 1000 }, err)
        lastMessage = message
      }
      await parts.clock.sleep(settings.configRetryMs ?? 1000, signal)
    }
  }
}

export function enabledFamilies(config: NetworkConfig): Family[] {
  const families: Family[] = []
  if (config.enableIPv4) families.push(4)
  if (config.enableIPv6) families.push(6)
  if (families.length === 0) throw new WeftError('CONFIG_INVALID', 'EnableIPv4 and EnableIPv6 are both false: none defined stack')
  return families
}

async function registerNetwork(config: NetworkConfig, extIface: ExternalInterface, parts: DaemonParts, signal: AbortSignal): Promise<Network> {
  const definition = parts.backendDefinition(config.backend.type)
  if (!definition) throw new WeftError('BACKEND_UNKNOWN', `unknown backend type "${config.backend.type}"`)
  parts.tuneRuntime?.(definition)
  const factory = await definition.load()
  const backend: Backend = factory(config.backend.options, {
    subnetManager: parts.subnetManager,
    extIface,
    kernel: parts.kernel,
    logger: parts.logger.child({ component: `backend/${config.backend.type}` }),
    clock: parts.clock,
    ...(parts.metrics ? { metrics: parts.metrics } : {}),
  })
  try {
    return await backend.registerNetwork(config, signal)
  } catch (err) {
    if (signal.aborted) throw signal.reason
    if (isWeftError(err)) throw err
    throw new WeftError('KERNEL_OP_FAILED', `failed to register network: ${errorMessage(err)}`, { cause: err })
  }
}

/** subnet.env text for this host: networks from the config, subnets from the lease. */
export function subnetEnvText(input: SubnetEnvInput): string {
  const { config, lease } = input
  return renderSubnetEnv({
    ipv4Network: config.enableIPv4 ? config.ipv4?.network : undefined,
    ipv4Subnet: config.enableIPv4 ? lease.subnet : undefined,
    ipv6Network: config.enableIPv6 ? config.ipv6?.network : undefined,
    ipv6Subnet: config.enableIPv6 ? lease.ipv6Subnet : undefined,
    mtu: input.mtu,
    ipMasq: input.ipMasq,
  })
}

