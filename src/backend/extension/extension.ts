/**
 * extension backend (flannel pkg/backend/extension): the data plane is the operator's commands.
 *
 * Design notes:
 * - PreStartupCommand runs before the lease is acquired; its stdout (trimmed) is published as
 *   BackendData, a JSON string, so peers' SubnetAddCommand read it on stdin. PostStartupCommand
 *   runs once the lease is ours, with NETWORK, SUBNET, IPV6SUBNET, PUBLIC_IP, PUBLIC_IPV6. Either
 *   failing fails the start, as in flannel: without them the host has no data plane.
 * - SubnetAddCommand / SubnetRemoveCommand run per remote extension lease added / removed, with
 *   SUBNET and PUBLIC_IP, stdin = the remote BackendData string. A failure is logged with the
 *   exit status and stderr, and the daemon goes on (flannel). Commands run one at a time, in
 *   event order, so a remove never overtakes the add it undoes.
 * - Unlike flannel: an unchanged lease delivered again (a renewal, a watch resync) does not
 *   re-run SubnetAddCommand; a snapshot after a watch resync runs SubnetRemoveCommand for leases
 *   that vanished meanwhile (flannel's watcher does the same diff); leases that overlap ours or
 *   carry our own public IP are refused, not handed to the commands; an absent IPv6 subnet or
 *   address is an empty variable, not flannel's "::/0" / "<nil>"; the public IP is the advertised
 *   one (--public-ip), where flannel passes the interface address.
 * - MTU: the external interface's (the commands decide any encapsulation).
 */
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { Family, IpAddr } from '../../ip/ip.ts'
import { formatCidr, formatIp } from '../../ip/ip.ts'
import type { Lease, LeaseAttrs } from '../../lease/lease.ts'
import type { Logger } from '../../log/logger.ts'
import { WeftError } from '../../errors.ts'
import { consumeLeaseWatch } from '../consume-lease-watch.ts'
import { checkLease, describeLease, sameLease, subnetOf, SubnetIndex, type LeaseCheckContext } from '../lease-validation.ts'
import { SerialLeaseQueue } from '../serial-lease-queue.ts'
import { commandOk, describeOutcome, runCommand, type CommandResult } from './command.ts'
import type { ExtensionOptions } from './extension-options.ts'

export const EXTENSION_TYPE = 'extension'

/** flannel waits forever; a hung command would stall every later lease event. */
export const COMMAND_TIMEOUT_MS = 120_000

/** Factory registered as `extension`. */
export function extension(options: ExtensionOptions, deps: BackendDeps): Backend {
  return { type: EXTENSION_TYPE, registerNetwork: (config, signal) => registerExtension(options, deps, config, signal) }
}

const text = (ip: IpAddr | undefined): string => (ip ? formatIp(ip) : '')

async function registerExtension(options: ExtensionOptions, deps: BackendDeps, config: NetworkConfig, signal: AbortSignal): Promise<Network> {
  const { extIface, logger } = deps
  let backendData: string | undefined
  if (options.preStartupCommand.length > 0) {
    const r = await runCommand(options.preStartupCommand, { vars: {}, stdin: '', timeoutMs: COMMAND_TIMEOUT_MS, signal })
    if (!commandOk(r)) throw startupFailure('PreStartupCommand', r)
    logger.info('ran PreStartupCommand', { argv: r.argv.join(' '), stdout: r.stdout, stderr: r.stderr || undefined })
    backendData = r.stdout
  } else {
    logger.info('no PreStartupCommand configured; skipping')
  }
  const attrs: LeaseAttrs = {
    ...(config.enableIPv4 && extIface.extAddr ? { publicIP: extIface.extAddr } : {}),
    ...(config.enableIPv6 && extIface.extV6Addr ? { publicIPv6: extIface.extV6Addr } : {}),
    backendType: EXTENSION_TYPE,
    ...(backendData === undefined ? {} : { backendData }),
  }
  const lease = await deps.subnetManager.acquireLease(config, attrs, signal)
  if (options.postStartupCommand.length > 0) {
    const vars = {
      NETWORK: config.ipv4 ? formatCidr(config.ipv4.network) : '',
      SUBNET: lease.subnet ? formatCidr(lease.subnet) : '',
      IPV6SUBNET: lease.ipv6Subnet ? formatCidr(lease.ipv6Subnet) : '',
      PUBLIC_IP: text(attrs.publicIP),
      PUBLIC_IPV6: text(attrs.publicIPv6),
    }
    const r = await runCommand(options.postStartupCommand, { vars, stdin: '', timeoutMs: COMMAND_TIMEOUT_MS, signal })
    if (!commandOk(r)) throw startupFailure('PostStartupCommand', r)
    logger.info('ran PostStartupCommand', { argv: r.argv.join(' '), stdout: r.stdout || undefined, stderr: r.stderr || undefined })
  } else {
    logger.info('no PostStartupCommand configured; skipping')
  }
  const families: Family[] = [...(config.enableIPv4 ? [4 as const] : []), ...(config.enableIPv6 ? [6 as const] : [])]
  const ctx: LeaseCheckContext = {
    backendType: EXTENSION_TYPE,
    families,
    networks: { ...(config.ipv4 ? { 4: config.ipv4.network } : {}), ...(config.ipv6 ? { 6: config.ipv6.network } : {}) },
    own: lease,
  }
  const peers = new ExtensionPeers(options, ctx, logger)
  return {
    lease,
    mtu: extIface.mtu,
    run: async (runSignal) => {
      peers.signal = runSignal
      await consumeLeaseWatch({ subnetManager: deps.subnetManager, clock: deps.clock, log: logger }, lease, (result) => peers.submit(result), runSignal)
      await peers.idle()
    },
  }
}

function startupFailure(name: string, r: CommandResult): WeftError {
  const stderr = r.stderr === '' ? '' : `; stderr: ${r.stderr}`
  return new WeftError('BACKEND_UNSUPPORTED', `extension: ${name} "${r.argv.join(' ')}" failed: ${describeOutcome(r)}${stderr}`, {
    details: { command: name, exitStatus: r.code, stdout: r.stdout || undefined },
  })
}

/** The remote leases handed to SubnetAddCommand, and the serial queue of commands. */
class ExtensionPeers extends SerialLeaseQueue {
  private readonly accepted = new SubnetIndex()

  constructor(
    private readonly options: ExtensionOptions,
    private readonly ctx: LeaseCheckContext,
    log: Logger,
  ) {
    super(log, ctx.families, 'extension')
  }

  protected async added(lease: Lease): Promise<void> {
    const key = this.keyOf(lease)
    const known = key === undefined ? undefined : this.peers.get(key)
    if (known && sameLease(known, lease)) return
    if (known) for (const f of this.ctx.families) { const n = subnetOf(known, f); if (n) this.accepted.delete(n, key as string) }
    const verdict = checkLease(this.ctx, lease, this.accepted)
    if (!verdict.ok) {
      const fields = { lease: describeLease(lease), reason: verdict.reason }
      if (verdict.ignored) this.log.warn(`ignoring non-${EXTENSION_TYPE} subnet`, fields)
      else this.log.warn('refusing lease', fields)
      if (known) await this.removed(known)
      return
    }
    this.peers.set(key as string, lease)
    for (const f of this.ctx.families) { const n = subnetOf(lease, f); if (n) this.accepted.add(n, key as string) }
    this.log.info('subnet added', { lease: describeLease(lease) })
    await this.runPeerCommand('SubnetAddCommand', this.options.subnetAddCommand, lease)
  }

  protected async removed(lease: Lease): Promise<void> {
    const key = this.keyOf(lease)
    const known = key === undefined ? undefined : this.peers.get(key)
    // Never handed to SubnetAddCommand (ignored, refused): nothing to undo.
    if (!known) return
    this.peers.delete(key as string)
    for (const f of this.ctx.families) { const n = subnetOf(known, f); if (n) this.accepted.delete(n, key as string) }
    this.log.info('subnet removed', { lease: describeLease(known) })
    // The removal event may carry the lease without attributes: use the one we added.
    await this.runPeerCommand('SubnetRemoveCommand', this.options.subnetRemoveCommand, known)
  }

  private async runPeerCommand(name: string, fields: readonly string[], lease: Lease): Promise<void> {
    if (fields.length === 0) return
    const data = lease.attrs.backendData
    if (data !== undefined && typeof data !== 'string') {
      this.log.error(`extension: BackendData is not a JSON string; not running ${name}`, { lease: describeLease(lease) })
      return
    }
    const vars = { SUBNET: lease.subnet ? formatCidr(lease.subnet) : '', PUBLIC_IP: text(lease.attrs.publicIP) }
    const r = await runCommand(fields, { vars, stdin: data ?? '', timeoutMs: COMMAND_TIMEOUT_MS, signal: this.signal })
    if (this.signal.aborted) return
    const ctx = { argv: r.argv.join(' '), lease: describeLease(lease), stdout: r.stdout || undefined, stderr: r.stderr || undefined }
    if (commandOk(r)) this.log.info(`ran ${name}`, ctx)
    else this.log.error(`${name} failed: ${describeOutcome(r)}`, { ...ctx, exitStatus: r.code })
  }
}
