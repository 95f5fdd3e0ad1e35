/**
 * Opens Kubernetes mode the way flanneld's NewSubnetManager does, before the daemon runs: the
 * annotation prefix, the API client (flags, kubeconfig or in-cluster), this host's node name
 * (NODE_NAME, else the pod's spec.nodeName), and net-conf.json. Each failure is one clear error.
 */
import { readFile } from 'node:fs/promises'
import type { DaemonOptions } from '../daemon/options.ts'
import type { Logger } from '../log/logger.ts'
import type { NetworkConfig } from '../config/network-config.ts'
import { ConfigError, WeftError, errorMessage } from '../errors.ts'
import { systemClock } from '../util/clock.ts'
import { annotationNames } from '../subnet/kube/annotations.ts'
import { createKubeApi } from '../subnet/kube/http-kube-api.ts'
import type { KubeApi } from '../subnet/kube/kube-api.ts'
import type { StoreRecorder } from '../metrics/recorder.ts'
import { KubeSubnetManager } from '../subnet/kube/kube-subnet-manager.ts'
import { retryApi } from '../subnet/kube/retry-api.ts'

export interface KubeOpenInputs {
  readonly options: DaemonOptions
  readonly env: NodeJS.ProcessEnv
  readonly logger: Logger
  /** Parses net-conf.json (kube mode of the network config parser). */
  readonly parseConfig: (json: string) => NetworkConfig
  /** /readyz reason while the node waits for its podCIDR. */
  readonly onWaiting?: (reason: string | undefined) => void
  /** weft_store_* metrics; absent when metrics are off. */
  readonly metrics?: StoreRecorder
}

export async function openKubeSubnetManager(inputs: KubeOpenInputs, signal: AbortSignal): Promise<KubeSubnetManager> {
  const { options, env, logger } = inputs
  const names = annotationNames(options.kubeAnnotationPrefix)
  const config = await readNetConf(options.netConfigPath, inputs.parseConfig)
  const metrics = inputs.metrics ? { metrics: inputs.metrics } : {}
  const { api, config: client } = createKubeApi({ kubeApiUrl: options.kubeApiUrl, kubeconfigFile: options.kubeconfigFile, env }, metrics)
  for (const warning of client.warnings) logger.warn('kube client', { warning })
  logger.info('kube API', { server: client.server, source: client.source })
  try {
    const nodeName = await resolveNodeName(api, env, logger, signal)
    return new KubeSubnetManager({
      api, nodeName, names, config, logger, clock: systemClock,
      setNodeNetworkUnavailable: options.setNodeNetworkUnavailable,
      ...(inputs.onWaiting ? { onWaiting: inputs.onWaiting } : {}),
      ...metrics,
    })
  } catch (err) {
    api.close()
    throw err
  }
}

/** Reads and parses net-conf.json; each failure names --net-config-path. */
export async function readNetConf(path: string, parse: (json: string) => NetworkConfig): Promise<NetworkConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    // flanneld: "failed to read net conf"; the path and the errno say what to fix.
    throw new ConfigError('--net-config-path', `failed to read net conf ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`)
  }
  try {
    return parse(text)
  } catch (err) {
    throw new WeftError('CONFIG_INVALID', `error parsing subnet config ${path}: ${errorMessage(err)}`, { cause: err })
  }
}

async function resolveNodeName(api: KubeApi, env: NodeJS.ProcessEnv, logger: Logger, signal: AbortSignal): Promise<string> {
  if (env['NODE_NAME']) return env['NODE_NAME']
  const podName = env['POD_NAME']
  const podNamespace = env['POD_NAMESPACE']
  if (!podName || !podNamespace) {
    throw new ConfigError('NODE_NAME', 'not set, and env variables POD_NAME and POD_NAMESPACE must be set to find the node (the DaemonSet passes them from the downward API)', { code: 'USAGE' })
  }
  const pod = await retryApi(() => api.getPod(podNamespace, podName, signal), { what: `GET pod ${podNamespace}/${podName}`, logger, clock: systemClock, signal })
  const nodeName = pod.spec.nodeName
  if (!nodeName) throw new WeftError('CONFIG_INVALID', `node name not present in pod spec '${podNamespace}/${podName}'`)
  return nodeName
}
