/** Parsing and validation of the weft plugin's network config (stdin). */
import type { Json, WeftNetConf } from './delegate-conf.ts'
import { CniError } from './cni-error.ts'

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env'
export const DEFAULT_DATA_DIR = '/var/lib/cni/flannel'

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Decodes stdin (error 6) and checks each field (error 7 naming the field, 1 for the version). */
export function parseNetConf(stdin: string): WeftNetConf {
  let raw: unknown
  try {
    raw = JSON.parse(stdin)
  } catch (err) {
    throw new CniError(6, 'failed to decode network configuration: not valid JSON', String(err))
  }
  if (!isObject(raw)) throw new CniError(6, 'failed to decode network configuration: not a JSON object')
  const str = (key: string, dflt?: string): string => {
    const v = raw[key]
    if (v === undefined && dflt !== undefined) return dflt
    if (typeof v !== 'string' || v === '') throw new CniError(7, `network config ${key} must be a non-empty string`)
    return v
  }
  const obj = (key: string): Json | undefined => {
    const v = raw[key]
    if (v === undefined) return undefined
    if (!isObject(v)) throw new CniError(7, `network config ${key} must be an object`)
    return v
  }
  const cniVersion = str('cniVersion', '0.2.0')
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) {
    throw new CniError(1, `incompatible CNI version ${cniVersion}; supported: ${SUPPORTED_VERSIONS.join(', ')}`)
  }
  const wait = raw.subnetFileWaitSeconds ?? 0
  if (typeof wait !== 'number' || !Number.isFinite(wait) || wait < 0 || wait > 600) {
    throw new CniError(7, 'network config subnetFileWaitSeconds must be a number of seconds in 0..600')
  }
  const conf: { -readonly [K in keyof WeftNetConf]: WeftNetConf[K] } = {
    cniVersion,
    name: str('name'),
    type: str('type'),
    subnetFile: str('subnetFile', DEFAULT_SUBNET_FILE),
    dataDir: str('dataDir', DEFAULT_DATA_DIR),
    subnetFileWaitSeconds: wait,
    delegate: obj('delegate') ?? {},
  }
  const delegate = conf.delegate
  if (delegate.type !== undefined && (typeof delegate.type !== 'string' || delegate.type === '')) {
    throw new CniError(7, 'network config delegate.type must be a non-empty string')
  }
  // flannel's rules: these two are always computed by the plugin
  if (delegate.name !== undefined) throw new CniError(7, 'network config delegate must not have a name field; it is set from name')
  if (delegate.ipam !== undefined) throw new CniError(7, 'network config delegate must not have an ipam field; use the top-level ipam')
  const ipam = obj('ipam')
  if (ipam) conf.ipam = ipam
  const rc = obj('runtimeConfig')
  if (rc) conf.runtimeConfig = rc
  const prev = obj('prevResult')
  if (prev) conf.prevResult = prev
  return conf
}
