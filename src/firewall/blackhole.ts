/**
 * --ip-blackhole-route: a `blackhole <own subnet>` route, so traffic to unassigned addresses of
 * this host's subnet is dropped here instead of following the default route out of the host.
 */
import type { IpNet } from '../ip/ip.ts'
import { formatCidr, netEqual } from '../ip/ip.ts'
import type { Kernel } from '../kernel/kernel.ts'
import type { Logger } from '../log/logger.ts'

/** Adds the blackhole route for each subnet that lacks one; returns the subnets added. */
export async function ensureBlackholeRoutes(
  kernel: Pick<Kernel, 'listRoutes' | 'replaceRoute'>,
  subnets: readonly IpNet[],
  logger: Logger,
): Promise<IpNet[]> {
  const added: IpNet[] = []
  for (const dst of subnets) {
    const existing = await kernel.listRoutes({ family: dst.family, type: 'blackhole', dst })
    if (existing.some((r) => r.type === 'blackhole' && netEqual(r.dst, dst))) continue
    await kernel.replaceRoute({ dst, type: 'blackhole' })
    logger.info('blackhole route added', { subnet: formatCidr(dst) })
    added.push(dst)
  }
  return added
}
