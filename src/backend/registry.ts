/**
 * The explicit backend registry (flannel pkg/backend/manager.go keeps a map keyed by the
 * lower-cased type, filled by init() side effects; here it is one literal map). Each entry's
 * option parser is small and loaded eagerly so the config is validated before any side effect;
 * the implementation is imported lazily by `load()`.
 *
 * To add a backend: one line in `backendRegistry`, `define(type, parseOptions, load)`, with
 * `{ hotCode: false }` when none of its JavaScript runs per peer or per packet.
 */
import type { Backend, BackendDefinition, BackendDeps } from './backend.ts'
import type { OptionSection } from '../config/backend-options.ts'
import { parseAllocOptions } from './alloc/alloc-options.ts'
import { parseHostGwOptions } from './host-gw/host-gw-options.ts'
import { parseUdpOptions } from './udp/udp-options.ts'
import { parseVxlanOptions } from './vxlan/vxlan-options.ts'
import { parseAwsVpcOptions } from './aws-vpc/aws-vpc-options.ts'
import { parseGceOptions } from './gce/gce-options.ts'
import { parseAliVpcOptions } from './ali-vpc/ali-vpc-options.ts'
import { parseExtensionOptions } from './extension/extension-options.ts'
import { parseIpipOptions } from './ipip/ipip-options.ts'
import { parseIpsecOptions, type IpsecOptions } from './ipsec/ipsec-options.ts'
import { parseWireGuardOptions, type WireGuardOptions } from './wireguard/wireguard-options.ts'

/** Map from lower-cased flannel type string to its definition. */
export type BackendRegistry = Readonly<Record<string, BackendDefinition>>

type Factory<O> = (options: O, deps: BackendDeps) => Backend

/** Builds a definition; erases the option type so differently-typed backends share one map. */
export function define<O>(type: string, parseOptions: (section: OptionSection) => O, load: () => Promise<Factory<O>>, { hotCode = true } = {}): BackendDefinition {
  return Object.freeze({ type, parseOptions, load: load as () => Promise<Factory<unknown>>, hotCode })
}

/** Every backend weft knows, in the order listed to operators. */
export const backendRegistry: BackendRegistry = Object.freeze({
  // alloc programs nothing: after its one lease it only renews.
  alloc: define('alloc', parseAllocOptions, () => import('./alloc/alloc.ts').then((m) => m.alloc), { hotCode: false }),
  'host-gw': define('host-gw', parseHostGwOptions, () => import('./host-gw/host-gw.ts').then((m) => m.hostGw)),
  udp: define('udp', parseUdpOptions, () => import('./udp/udp.ts').then((m) => m.udp)),
  vxlan: define('vxlan', parseVxlanOptions, () => import('./vxlan/vxlan.ts').then((m) => m.vxlan)),
  'aws-vpc': define('aws-vpc', parseAwsVpcOptions, () => import('./aws-vpc/aws-vpc.ts').then((m) => m.awsVpc)),
  gce: define('gce', parseGceOptions, () => import('./gce/gce.ts').then((m) => m.gce)),
  'ali-vpc': define('ali-vpc', parseAliVpcOptions, () => import('./ali-vpc/ali-vpc.ts').then((m) => m.aliVpc)),
  // extension runs the operator's commands; its JavaScript only waits for them.
  wireguard: define('wireguard', parseWireGuardOptions, () => import('./wireguard/wireguard.ts').then((m) => (o: WireGuardOptions, d: BackendDeps) => m.wireguard(o, d))),
  ipsec: define('ipsec', parseIpsecOptions, () => import('./ipsec/ipsec.ts').then((m) => (o: IpsecOptions, d: BackendDeps) => m.ipsec(o, d)), { hotCode: false }),
  ipip: define('ipip', parseIpipOptions, () => import('./ipip/ipip.ts').then((m) => m.ipip)),
  extension: define('extension', parseExtensionOptions, () => import('./extension/extension.ts').then((m) => m.extension), { hotCode: false }),
})

/** The registry's type strings, in declaration order (used in "expected one of ..." messages). */
export function knownBackendTypes(registry: BackendRegistry = backendRegistry): string[] {
  return Object.keys(registry)
}
