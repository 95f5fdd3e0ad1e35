/**
 * The gce `Backend` section. flannel's gce backend took no options; weft adds two endpoint
 * overrides for private clouds and emulators. Keys arrive lower-cased, `type` removed.
 */
import { ConfigError } from '../../errors.ts'
import { rejectUnknownOptions, type OptionSection } from '../../config/backend-options.ts'

export interface GceOptions {
  /**
   * Metadata server base URL (`http://host[:port]`). Default: `GCE_METADATA_HOST` from the
   * environment, else `http://169.254.169.254`.
   */
  readonly metadataEndpoint?: string
  /** Compute API base URL. Default: `https://compute.googleapis.com`. */
  readonly computeEndpoint?: string
}

const KNOWN = ['MetadataEndpoint', 'ComputeEndpoint'] as const

/** Validates the section; URLs must be http(s) without a path. */
export function parseGceOptions(section: OptionSection): GceOptions {
  rejectUnknownOptions(section, KNOWN, 'gce')
  return Object.freeze({
    metadataEndpoint: endpointOption(section, 'MetadataEndpoint'),
    computeEndpoint: endpointOption(section, 'ComputeEndpoint'),
  })
}

/** Reads an optional `http(s)://host[:port]` option; returns it without a trailing slash. */
export function endpointOption(section: OptionSection, name: string): string | undefined {
  const value = section[name.toLowerCase()]
  if (value === undefined || value === null) return undefined
  const field = `Backend.${name}`
  if (typeof value !== 'string') throw new ConfigError(field, `must be a URL string, got ${typeof value}`)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(field, `must be an http:// or https:// URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(field, `must be an http:// or https:// URL, got ${JSON.stringify(value)}`)
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new ConfigError(field, `must be a base URL without a path, got ${JSON.stringify(value)}`)
  }
  return `${url.protocol}//${url.host}`
}
