/**
 * Builds weftd's real parts from the parsed flags and runs the daemon. Returns the exit code;
 * never exits the process itself (cli/weftd.ts does).
 */
import { writeSync } from 'node:fs'
import { parseDaemonArgs, usageText, type DaemonOptions } from '../daemon/options.ts'
import { runDaemon, subnetEnvText, type DaemonParts } from '../daemon/daemon.ts'
import { startHealthServer, type HealthServer } from '../daemon/healthz.ts'
import { StreamLogger } from '../log/stream-logger.ts'
import type { Logger } from '../log/logger.ts'
import { errorMessage, isWeftError, type ErrorCode } from '../errors.ts'
import { msSinceSpawn, systemClock } from '../util/clock.ts'
import { untilAborted } from '../util/abort.ts'
import { backendRegistry } from '../backend/registry.ts'
import { parseNetworkConfig } from '../config/parse-network-config.ts'
import { parseSubnetEnv, readSubnetFileSync, writeSubnetFile, type PreviousSubnetEnv } from '../subnet/subnet-file.ts'
import { EtcdSubnetManager } from '../subnet/etcd/etcd-subnet-manager.ts'
import { openEtcdRegistry } from './store.ts'
import type { Kernel } from '../kernel/kernel.ts'
// Always needed on the way to the first lease: static imports load with the entry point,
// where dynamic ones would each cost a loader round trip on that path.
import { LinuxKernel } from '../kernel/linux/linux-kernel.ts'
import { libc } from '../kernel/linux/libc.ts'
import { startHeapTrim } from '../daemon/heap-trim.ts'
import { releaseCleanFilePages } from '../kernel/linux/file-pages.ts'
import { setV8Flags } from '../util/v8-flags.ts'
import { selectExternalInterface } from '../daemon/iface-select.ts'
import { checkBrNetfilter } from '../firewall/br-netfilter.ts'
import type { SubnetManager } from '../subnet/subnet-manager.ts'
import type { ExternalInterface } from '../backend/backend.ts'
import { openKubeSubnetManager } from './kube-store.ts'
import { VERSION } from './version.ts'
import { formatIp, type IpAddr } from '../ip/ip.ts'
import { DaemonStatus } from '../daemon/daemon-status.ts'
import type { MetricsEndpoint } from '../metrics/metrics-server.ts'
import type { NetworkConfig } from '../config/network-config.ts'

const YOUNG_GENERATION_FIXED = '--semi-space-growth-factor=1'

/** Error codes that mean "fix your flags or config" (exit 2) rather than a runtime failure (exit 1). */
const USAGE_CODES: readonly ErrorCode[] = ['USAGE', 'CONFIG_INVALID', 'BACKEND_UNKNOWN', 'BACKEND_UNSUPPORTED', 'BACKEND_CHANGED', 'CLOUD_CREDENTIALS']

export async function runWeftd(argv: readonly string[], env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<number> {
  let options: DaemonOptions
  try {
    const parsed = parseDaemonArgs(argv, env, { stderrIsTTY: process.stderr.isTTY === true, program: 'weftd' })
    if ('help' in parsed) {
      process.stdout.write(parsed.help)
      return 0
    }
    if ('version' in parsed) {
      process.stderr.write(`${VERSION}\n`) // flanneld prints its version on stderr
      return 0
    }
    options = parsed
  } catch (err) {
    const message = errorMessage(err)
    // As weft does: an unknown flag is answered with the flags there are.
    process.stderr.write(`weftd: ${message}\n${/: unknown flag/.test(message) ? `\n${usageText('weftd')}` : ''}`)
    return 2
  }
  const store = options.kubeSubnetMgr ? 'kube' : 'etcd'
  const status = new DaemonStatus(VERSION, store)
  const logger = status.watch(new StreamLogger({ level: options.logLevel, format: options.logFormat, write: writeStderr }))
  logger.info('starting', { version: VERSION, sinceSpawnMs: msSinceSpawn(), flags: describeFlags(options) })

  let subnetManager: SubnetManager | undefined
  let kernel: Kernel | undefined
  let health: HealthServer | undefined
  let endpoint: MetricsEndpoint | undefined
  const serveHealth = async (): Promise<HealthServer> => {
    const server = await startHealthServer(options.healthzIp, options.healthzPort)
    server.route('/status', () => ({ status: 200, contentType: 'application/json', body: JSON.stringify(status.report()) + '\n' }))
    if (endpoint) server.route('/metrics', endpoint.scrape)
    return server
  }
  const onConfig = (config: NetworkConfig): void => {
    status.setConfig(config)
    endpoint?.metrics.setBackend({ version: VERSION, backend: config.backend.type, store })
  }
  try {
    if (options.metricsAddr) {
      // Loaded only with --metrics-addr: a daemon without metrics never runs this code.
      const { startMetrics } = await import('../metrics/metrics-server.ts')
      endpoint = await startMetrics(options.metricsAddr, { version: VERSION, backend: 'unknown', store })
      const metrics = endpoint.metrics
      status.counters = () => metrics.summary()
      status.alsoRecord = metrics
      logger.info('metrics', { addr: `${options.metricsAddr.host}:${endpoint.port}`, path: '/metrics' })
    }
    const metrics = endpoint?.metrics
    const previous = readPrevious(options.subnetFile, logger)
    let effective = options
    let onInterface: ((iface: ExternalInterface) => void) | undefined
    if (options.kubeSubnetMgr) {
      // Up first, so /readyz can say what the node waits for (its podCIDR).
      if (options.healthzPort > 0) health = await serveHealth()
      const kube = await openKubeSubnetManager({ options, env, logger, parseConfig: configParser(logger, 'kube', onConfig), onWaiting: (reason) => health?.setWaitingFor(reason), ...(metrics ? { metrics } : {}) }, signal)
      subnetManager = kube
      kube.prefetch(signal)
      effective = withStoredPublicIps(options, await kube.storedPublicIps(signal), logger)
      onInterface = (iface) => kube.setLocalAddresses(iface.extAddr, iface.extV6Addr)
    } else {
      const etcdManager = new EtcdSubnetManager({
        registry: openEtcdRegistry(options, logger, metrics),
        prefix: options.etcdPrefix,
        logger,
        clock: systemClock,
        parseConfig: configParser(logger, 'etcd', onConfig),
        previousSubnet: { ipv4: previous.ipv4Subnet, ipv6: previous.ipv6Subnet },
        ...(metrics ? { metrics } : {}),
      })
      // The store's first round trips go out before anything else: loading the netlink layer and
      // selecting the interface then overlap etcd's work instead of preceding it. One turn of the
      // event loop lets the sockets connect and the requests leave before that synchronous work.
      etcdManager.prefetch(signal)
      subnetManager = etcdManager
      await new Promise((resolve) => setImmediate(resolve))
      if (options.healthzPort > 0) health = await serveHealth()
    }
    const linux = new LinuxKernel({ logger: logger.child({ component: 'kernel' }) })
    kernel = endpoint ? (await import('../metrics/metrics-server.ts')).instrumentKernel(linux, endpoint.metrics) : linux
    startHeapTrim({ intervalMs: 5000, releaseMalloc: () => libc().mallocTrim(0), releaseFilePages: () => releaseCleanFilePages(libc().madvise) }, signal)
    let chosen: ExternalInterface | undefined
    const kubeOnInterface = onInterface
    onInterface = (iface) => { chosen = iface; kubeOnInterface?.(iface) }
    const parts = { ...(await daemonParts(effective, subnetManager, kernel, logger, previous, health, onInterface)), ...(metrics ? { metrics } : {}), leaseRecorder: status }
    const writeSubnetEnv = parts.writeSubnetEnv
    parts.writeSubnetEnv = async (input) => {
      status.setLease(input.lease, input.mtu)
      await writeSubnetEnv(input)
    }
    const onReady = parts.onReady
    parts.onReady = () => {
      status.setReady()
      onReady?.()
      if (health) startProbeRow(health, kernel!, () => chosen, status, signal)
    }
    const outcome = await runDaemon({ subnetFile: options.subnetFile, renewMarginMinutes: options.subnetLeaseRenewMargin, ipMasq: options.ipMasq, trafficRulesFirst: options.ipMasq || options.iptablesForwardRules }, parts, signal)
    logger.info('exiting cleanly', { reason: outcome })
    return 0
  } catch (err) {
    if (signal.aborted) {
      logger.info('exiting cleanly', { reason: 'stopped' })
      return 0
    }
    return fail(logger, options, err, isWeftError(err) && USAGE_CODES.includes(err.code) ? 2 : 1)
  } finally {
    await health?.close()
    await endpoint?.close()
    await subnetManager?.close().catch(() => {})
    kernel?.close()
  }
}

async function daemonParts(options: DaemonOptions, subnetManager: SubnetManager, kernel: Kernel, logger: Logger, previous: PreviousSubnetEnv, health: HealthServer | undefined, onInterface?: (iface: ExternalInterface) => void): Promise<DaemonParts> {
  return {
    subnetManager,
    kernel,
    logger,
    clock: systemClock,
    backendDefinition: (type) => backendRegistry[type],
    // Before the lease listing is decoded, the one burst such a backend has.
    // The young generation V8 grows for a burst is never given back (a collection keeps its
    // pages: 32 MiB resident with 5,000 vxlan peers); kept at its start size, the burst's
    // survivors go to the old space, which a collection does shrink (see heap-trim.ts).
    tuneRuntime: (definition) => { setV8Flags(definition.hotCode ? YOUNG_GENERATION_FIXED : `--no-opt ${YOUNG_GENERATION_FIXED}`) },
    selectInterface: async (families) => {
      const selection = await selectExternalInterface(kernel, {
        iface: options.iface,
        ifaceRegex: options.ifaceRegex,
        ifaceCanReach: options.ifaceCanReach,
        publicIp: options.publicIp,
        publicIpv6: options.publicIpv6,
        families,
      }, logger)
      onInterface?.(selection.iface)
      return selection.iface
    },
    writeSubnetEnv: (input) => writeSubnetFile(options.subnetFile, subnetEnvText(input)),
    preflight: async (config) => {
      const families = [...(config.enableIPv4 ? [4 as const] : []), ...(config.enableIPv6 ? [6 as const] : [])]
      await checkBrNetfilter((path) => kernel.getSysctl(path), families, config.enableNFTables, logger)
    },
    trafficRules: async (config, lease, signal) => {
      const { startTrafficRules } = await import('../firewall/traffic-manager.ts')
      await startTrafficRules({
        options: {
          ipMasq: options.ipMasq,
          ipMasqFullyRandomDisable: options.ipMasqFullyRandomDisable,
          forwardRules: options.iptablesForwardRules,
          blackholeRoute: options.ipBlackholeRoute,
          resyncSeconds: options.iptablesResync,
        },
        config, lease, previous, kernel, logger, clock: systemClock,
      }, signal)
      // The resync loop runs in the background until the signal aborts.
      return { running: untilAborted(signal) }
    },
    onReady: () => health?.setReady(),
  }
}

/**
 * After the daemon is ready, the health port also serves this host's probe row (/probes, read by
 * `weft dashboard`). The probe code is imported then, never on the way to the first lease.
 */
function startProbeRow(health: HealthServer, kernel: Kernel, iface: () => ExternalInterface | undefined, status: DaemonStatus, signal: AbortSignal): void {
  if (probeRowsOn.has(health)) return
  probeRowsOn.add(health)
  void import('../dashboard/probe-row.ts').then((m) => {
    const publicIp = (): string | undefined => { const a = iface()?.extAddr; return a ? formatIp(a) : undefined }
    health.route('/probes', m.probeRowRoute({ kernel, port: health.port, status: () => status.report(), publicIp }, signal))
  })
}
const probeRowsOn = new WeakSet<HealthServer>()

/**
 * Log lines go to fd 2 directly, as flanneld's glog does: synchronous and in order, without the
 * stream machinery process.stderr builds on first use. A non-blocking pipe that is full (EAGAIN)
 * falls back to the stream, which queues.
 */
function writeStderr(line: string): void {
  try {
    writeSync(2, line)
  } catch {
    process.stderr.write(line)
  }
}

/** Parses the network config with the backend registry; each distinct warning is logged once. */
function configParser(logger: Logger, mode: 'etcd' | 'kube', onConfig?: (config: NetworkConfig) => void): (json: string) => ReturnType<typeof parseNetworkConfig>['config'] {
  const warned = new Set<string>()
  return (json) => {
    const { config, warnings } = parseNetworkConfig(json, backendRegistry, { mode })
    for (const w of warnings) {
      if (!warned.has(w)) logger.warn('network config', { warning: w })
      warned.add(w)
    }
    onConfig?.(config)
    return config
  }
}

/** flannel's step 9: the node-public-ip[v6] annotations override --public-ip[v6]. */
function withStoredPublicIps(options: DaemonOptions, stored: { v4?: IpAddr; v6?: IpAddr }, logger: Logger): DaemonOptions {
  if (stored.v4) logger.info('public IP from node annotation', { publicIp: formatIp(stored.v4) })
  if (stored.v6) logger.info('public IPv6 from node annotation', { publicIpv6: formatIp(stored.v6) })
  return { ...options, ...(stored.v4 ? { publicIp: stored.v4 } : {}), ...(stored.v6 ? { publicIpv6: stored.v6 } : {}) }
}

function readPrevious(path: string, logger: Logger): PreviousSubnetEnv {
  try {
    const text = readSubnetFileSync(path)
    return text === undefined ? {} : parseSubnetEnv(text)
  } catch (err) {
    logger.warn('cannot read the previous subnet file; starting without it', { path }, err)
    return {}
  }
}

function fail(logger: Logger, options: DaemonOptions, err: unknown, code: number): number {
  if (options.logLevel === 'debug') logger.debug('failure detail', {}, err)
  process.stderr.write(`weftd: ${errorMessage(err)}\n`)
  return code
}

/** The flags for the start-up log line, with secrets removed. */
function describeFlags(options: DaemonOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (key === 'sources') continue
    if (key === 'etcdPassword' && value) out[key] = '<redacted>'
    else out[key] = isIp(value) ? formatIp(value) : value
  }
  return out
}

function isIp(value: unknown): value is IpAddr {
  return typeof value === 'object' && value !== null && typeof (value as IpAddr).value === 'bigint'
}
