/**
 * alloc backend (flannel pkg/backend/alloc): only acquires a subnet lease for this host and
 * programs nothing. Something else (a cloud route controller, a CNI chain) does the routing;
 * weft just hands out non-overlapping subnets and writes subnet.env.
 */
import type { Backend, BackendDeps, Network } from '../backend.ts'
import type { NetworkConfig } from '../../config/network-config.ts'
import type { LeaseAttrs } from '../../lease/lease.ts'
import type { AllocOptions } from './alloc-options.ts'
import { untilAborted } from '../../util/abort.ts'

/** Factory: `(options, deps) => Backend`, as every backend in the registry. */
export function alloc(_options: AllocOptions, deps: BackendDeps): Backend {
  return {
    type: 'alloc',
    async registerNetwork(config: NetworkConfig, signal: AbortSignal): Promise<Network> {
      const { extIface } = deps
      const attrs: LeaseAttrs = {
        ...(config.enableIPv4 && extIface.extAddr ? { publicIP: extIface.extAddr } : {}),
        ...(config.enableIPv6 && extIface.extV6Addr ? { publicIPv6: extIface.extV6Addr } : {}),
        // flannel's alloc writes no BackendType; peers of other types ignore these leases.
        backendType: '',
      }
      const lease = await deps.subnetManager.acquireLease(config, attrs, signal)
      deps.logger.child({ component: 'backend/alloc' }).debug('lease acquired; alloc programs no data path')
      return {
        lease,
        mtu: extIface.mtu,
        run: untilAborted,
      }
    },
  }
}
