/** `weft config get|set FILE`: the network config, validated before it is written. */
import { readFile } from 'node:fs/promises'
import type { Registry } from '../../subnet/etcd/registry.ts'
import { parseNetworkConfig } from '../../config/parse-network-config.ts'
import { backendRegistry } from '../../backend/registry.ts'
import { decodeLeaseAttrs } from '../../lease/lease-codec.ts'
import { ConfigError, WeftError, errorMessage } from '../../errors.ts'

export async function getConfig(registry: Registry, prefix: string, signal: AbortSignal): Promise<string> {
  const json = await registry.getConfig(prefix, signal)
  if (json === undefined) throw new WeftError('CONFIG_NOT_FOUND', `no network config at ${prefix}/config; write one with \`weft config set FILE\``)
  return json
}

/**
 * Validates FILE with the same parser weftd uses, refuses a backend change while leases of the
 * old backend exist (hosts would be half-migrated), then writes it. Returns the warnings.
 */
export async function setConfig(registry: Registry, prefix: string, file: string, force: boolean, signal: AbortSignal): Promise<string[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, `cannot read the config file: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, { code: 'USAGE' })
  }
  const { config, warnings } = parseNetworkConfig(text, backendRegistry)
  if (!force) {
    const listing = await registry.listSubnets(prefix, signal)
    const others = new Set<string>()
    for (const entry of listing.entries) {
      if (entry.leaseId === '0') continue // a reservation belongs to no backend yet
      try {
        const type = decodeLeaseAttrs(entry.value).backendType || '(none)'
        if (!sameBackend(type, config.backend.type)) others.add(type)
      } catch {
        // garbage keys are weftd's problem to skip, not a reason to refuse
      }
    }
    if (others.size > 0) {
      throw new WeftError('BACKEND_CHANGED', `Backend.Type ${config.backend.type} differs from the backend of existing leases (${[...others].join(', ')}); the backend is fixed once set: stop every host and delete its lease, or pass --force`)
    }
  }
  await registry.putConfig(prefix, text, signal)
  return warnings
}

/** udp and alloc leases carry no BackendType. */
function sameBackend(leaseType: string, configType: string): boolean {
  if (leaseType === '(none)') return configType === 'udp' || configType === 'alloc'
  return leaseType === configType
}
