/**
 * The ali-vpc `Backend` section: flannel's AccessKeyID / AccessKeySecret, plus endpoint
 * overrides for private clouds and emulators. Keys arrive lower-cased, `type` removed.
 * Credentials may instead come from ACCESS_KEY_ID / ACCESS_KEY_SECRET at run time.
 */
import { ConfigError } from '../../errors.ts'
import { rejectUnknownOptions, describe, type OptionSection } from '../../config/backend-options.ts'
import { credentialsError } from '../cloud/cloud-error.ts'
import { endpointOption } from '../gce/gce-options.ts'

export interface AliVpcOptions {
  readonly accessKeyID?: string
  readonly accessKeySecret?: string
  /** VPC API base URL. Default: `https://vpc.aliyuncs.com`. */
  readonly vpcEndpoint?: string
  /** Metadata service base URL. Default: `http://100.100.100.200`. */
  readonly metadataEndpoint?: string
}

const KNOWN = ['AccessKeyID', 'AccessKeySecret', 'VpcEndpoint', 'MetadataEndpoint'] as const

export function parseAliVpcOptions(section: OptionSection): AliVpcOptions {
  rejectUnknownOptions(section, KNOWN, 'ali-vpc')
  const accessKeyID = stringOption(section, 'AccessKeyID')
  const accessKeySecret = stringOption(section, 'AccessKeySecret')
  // Half a key pair in the config is a mistake, not a cue to mix it with the environment.
  if ((accessKeyID === undefined) !== (accessKeySecret === undefined)) {
    const missing = accessKeyID === undefined ? 'AccessKeyID' : 'AccessKeySecret'
    throw new ConfigError(`Backend.${missing}`, `is required when Backend.${missing === 'AccessKeyID' ? 'AccessKeySecret' : 'AccessKeyID'} is set`)
  }
  return Object.freeze({
    accessKeyID,
    accessKeySecret,
    vpcEndpoint: endpointOption(section, 'VpcEndpoint'),
    metadataEndpoint: endpointOption(section, 'MetadataEndpoint'),
  })
}

function stringOption(section: OptionSection, name: string): string | undefined {
  const value = section[name.toLowerCase()]
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw new ConfigError(`Backend.${name}`, `must be a string, got ${describe(value).replace(/ .*/, '')}`)
  return value
}

export interface AliCredentials {
  readonly accessKeyId: string
  readonly accessKeySecret: string
}

/** Options first, then ACCESS_KEY_ID / ACCESS_KEY_SECRET (flannel's order); else CLOUD_CREDENTIALS. */
export function resolveAliCredentials(options: AliVpcOptions, env: Readonly<Record<string, string | undefined>>): AliCredentials {
  if (options.accessKeyID !== undefined && options.accessKeySecret !== undefined) {
    return { accessKeyId: options.accessKeyID, accessKeySecret: options.accessKeySecret }
  }
  const id = env['ACCESS_KEY_ID']?.trim() ?? ''
  const secret = env['ACCESS_KEY_SECRET']?.trim() ?? ''
  if (id !== '' && secret !== '') return { accessKeyId: id, accessKeySecret: secret }
  const problem = id === '' && secret === '' ? 'are not set' : `are incomplete (${id === '' ? 'ACCESS_KEY_ID' : 'ACCESS_KEY_SECRET'} is empty)`
  throw credentialsError('alibaba', problem, 'set Backend.AccessKeyID and Backend.AccessKeySecret in the network config, or ACCESS_KEY_ID and ACCESS_KEY_SECRET in the environment')
}
