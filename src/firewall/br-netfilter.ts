/**
 * The br_netfilter check. flannel exits with "Failed to check br_netfilter" when
 * /proc/sys/net/bridge/bridge-nf-call-iptables is absent (flannel#2068, #2166, #2254: crashes
 * rootless and module-less setups). weft reports what to load and carries on: only traffic
 * between pods on the same bridge is affected, everything routed still sees the rules.
 */
import type { Family } from '../ip/ip.ts'
import type { Logger } from '../log/logger.ts'

export interface BrNetfilterStatus {
  /** True when every needed sysctl exists and is 1 (or the check does not apply). */
  readonly ok: boolean
  /** Sysctl paths (below /proc/sys) that do not exist or cannot be read. */
  readonly missing: readonly string[]
  /** Sysctl paths that exist but are 0. */
  readonly disabled: readonly string[]
}

export function brNetfilterSysctl(family: Family): string {
  return family === 4 ? 'net/bridge/bridge-nf-call-iptables' : 'net/bridge/bridge-nf-call-ip6tables'
}

/**
 * Checks the bridge-nf-call sysctls for the enabled families (skipped in nftables mode, as
 * flannel does). Never throws: problems are logged as warnings with the fix.
 */
export async function checkBrNetfilter(
  readSysctl: (path: string) => Promise<string | undefined>,
  families: readonly Family[],
  enableNFTables: boolean,
  logger: Logger,
): Promise<BrNetfilterStatus> {
  if (enableNFTables) return { ok: true, missing: [], disabled: [] }
  const missing: string[] = []
  const disabled: string[] = []
  for (const family of families) {
    const path = brNetfilterSysctl(family)
    let value: string | undefined
    try {
      value = await readSysctl(path)
    } catch {
      value = undefined // unreadable (rootless, masked /proc): same advice as absent
    }
    if (value === undefined) missing.push(path)
    else if (value.trim() !== '1') disabled.push(path)
  }
  if (missing.length > 0) {
    logger.warn('br_netfilter is not loaded; continuing without it', {
      missing: missing.map((p) => `/proc/sys/${p}`).join(','),
      hint: 'run "modprobe br_netfilter" and persist it with "echo br_netfilter > /etc/modules-load.d/br_netfilter.conf"; until then traffic between pods on the same bridge bypasses iptables (kube-proxy Services from a pod to a pod on the same node may fail)',
    })
  }
  if (disabled.length > 0) {
    logger.warn('bridged traffic bypasses iptables', {
      disabled: disabled.map((p) => `/proc/sys/${p}`).join(','),
      hint: `set ${disabled.map((p) => `${p.replaceAll('/', '.')}=1`).join(' ')} with sysctl`,
    })
  }
  return { ok: missing.length === 0 && disabled.length === 0, missing, disabled }
}
