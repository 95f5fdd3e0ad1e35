/** The previous network/subnet values (for rule recycling) from an old subnet.env text. */
import { parseSubnetEnv } from '../cni/subnet-env.ts'
import type { PreviousSubnets } from './traffic-manager.ts'

/** Lenient: a missing or malformed file yields no previous values (nothing to recycle). */
export function previousSubnetsFromEnv(text: string | undefined): PreviousSubnets {
  if (text === undefined) return {}
  try {
    const env = parseSubnetEnv(text)
    const out: { -readonly [K in keyof PreviousSubnets]: PreviousSubnets[K] } = {}
    if (env.network) out.ipv4Network = env.network
    if (env.subnet) out.ipv4Subnet = env.subnet.net
    if (env.ipv6Network) out.ipv6Network = env.ipv6Network
    if (env.ipv6Subnet) out.ipv6Subnet = env.ipv6Subnet.net
    return out
  } catch {
    return {}
  }
}
