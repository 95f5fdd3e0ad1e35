/** Opens the etcd registry from weftd/weft flags (both programs reach the store the same way). */
import type { DaemonOptions } from '../daemon/options.ts'
import type { Logger } from '../log/logger.ts'
import type { StoreRecorder } from '../metrics/recorder.ts'
import { EtcdRegistry } from '../subnet/etcd/etcd-registry.ts'

export function openEtcdRegistry(options: DaemonOptions, logger: Logger, metrics?: StoreRecorder): EtcdRegistry {
  return new EtcdRegistry({
    endpoints: options.etcdEndpoints,
    ...(options.etcdKeyfile ? { keyFile: options.etcdKeyfile } : {}),
    ...(options.etcdCertfile ? { certFile: options.etcdCertfile } : {}),
    ...(options.etcdCafile ? { caFile: options.etcdCafile } : {}),
    ...(options.etcdUsername ? { username: options.etcdUsername, password: options.etcdPassword } : {}),
    logger,
    ...(metrics ? { metrics } : {}),
  })
}
