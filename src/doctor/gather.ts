/**
 * Gathers the doctor's facts: the store (readStore), this host's kernel through the Kernel
 * interface, sysctls, iptables/nft, subnet.env, and probes of every peer. Read-only: nothing here
 * changes the host. Commands (ping, ethtool, iptables-save, nft) go through an injected runner.
 */
import { readFile } from 'node:fs/promises'
import { release } from 'node:os'
import type { DaemonOptions } from '../daemon/options.ts'
import type { Kernel, Link } from '../kernel/kernel.ts'
import type { Logger } from '../log/logger.ts'
import type { CommandRunner } from '../firewall/command-runner.ts'
import type { Lease } from '../lease/lease.ts'
import type { VxlanOptions } from '../backend/vxlan/vxlan-options.ts'
import type { DeviceFacts, DoctorFacts, IptablesFacts, LeaseFacts, PeerFacts } from './facts.ts'
import { formatCidr, formatIp, ipEqual, netIp, netEqual, type Family } from '../ip/ip.ts'
import { selectExternalInterface } from '../daemon/iface-select.ts'
import { parseDotEnv } from '../subnet/subnet-file.ts'
import { decodeBackendData } from '../backend/vxlan/backend-data.ts'
import { deviceName, vxlanOverhead } from '../backend/vxlan/vxlan-device.ts'
import { parseIptablesSave } from './checks/firewall.ts'
import { ping } from './probe.ts'
import { readStore, type NamedLease, type StoreView } from './store-view.ts'

export interface GatherInputs {
  readonly options: DaemonOptions
  readonly env: NodeJS.ProcessEnv
  readonly kernel: Kernel
  readonly run: CommandRunner
  readonly logger: Logger
  readonly now: () => number
  /** Skip the probes (facts about the kernel and the store only). */
  readonly noProbes?: boolean
}

export async function gatherFacts(inputs: GatherInputs, signal: AbortSignal): Promise<DoctorFacts> {
  const store = await readStore(inputs.options, inputs.env, inputs.logger, signal)
  return gatherHostFacts(inputs, store)
}

/** Everything after the store: also used by weftd's probe loop, which already has the leases. */
export async function gatherHostFacts(inputs: GatherInputs, store: StoreView): Promise<DoctorFacts> {
  const { options, kernel, run } = inputs
  const { config } = store
  const families: Family[] = [...(config.enableIPv4 ? [4 as const] : []), ...(config.enableIPv6 ? [6 as const] : [])]
  const { iface } = await selectExternalInterface(kernel, {
    iface: options.iface, ifaceRegex: options.ifaceRegex, ifaceCanReach: options.ifaceCanReach,
    publicIp: options.publicIp, publicIpv6: options.publicIpv6, families,
  })
  const backendType = config.backend.type
  const ownLease = store.mode === 'kube' ? store.node?.lease : store.leases.find((l) => ipEqual(l.lease.attrs.publicIP, iface.extAddr))?.lease
  const host = store.node?.name ?? (iface.extAddr ? formatIp(iface.extAddr) : iface.name)
  const links = await kernel.listLinks()
  const vxlanOptions = backendType === 'vxlan' ? (config.backend.options as VxlanOptions) : undefined
  const deviceLinkName = vxlanOptions ? deviceName(4, vxlanOptions.vni) : backendType === 'udp' ? 'flannel0' : undefined
  const link = deviceLinkName === undefined ? undefined : links.find((l) => l.name === deviceLinkName)
  const device = deviceLinkName === undefined ? undefined : link ? await deviceFacts(link, run) : null
  const underlayMtu = (vxlanOptions?.mtu || iface.mtu)
  const network = config.ipv4 ? formatCidr(config.ipv4.network) : undefined
  const now = inputs.now()
  const leaseFacts = (l: NamedLease): LeaseFacts => ({
    name: l.name,
    ...(l.lease.subnet ? { subnet: formatCidr(l.lease.subnet) } : {}),
    ...(l.lease.attrs.publicIP ? { publicIp: formatIp(l.lease.attrs.publicIP) } : {}),
    ...(l.lease.expiration !== undefined ? { expiresInSeconds: Math.round((l.lease.expiration - now) / 1000) } : {}),
  })
  const peers = store.leases.filter((l) => l.lease !== ownLease && !(ownLease && netEqual(l.lease.subnet, ownLease.subnet)) && l.lease.subnet)
  const [subnetEnv, sysctl, iptables, nftTables, peerFacts] = await Promise.all([
    readEnv(options.subnetFile),
    readSysctls(kernel),
    readIptables(run, network),
    readNftTables(run),
    Promise.all(peers.map((p) => peerFactsOf(inputs, p, link, device ?? undefined, links))),
  ])
  return {
    mode: store.mode,
    host,
    backendType,
    ...(network ? { network } : {}),
    enableIPv6: config.enableIPv6,
    enableNFTables: config.enableNFTables,
    iface: { name: iface.name, mtu: iface.mtu, ...(iface.extAddr ? { addr: formatIp(iface.extAddr) } : {}) },
    ...(vxlanOptions?.mtu ? { backendMtu: vxlanOptions.mtu } : {}),
    ...(device !== undefined ? { device } : {}),
    ...(vxlanOptions ? { expectedDeviceMtu: underlayMtu - vxlanOverhead(4) } : {}),
    subnetEnv: { path: options.subnetFile, ...(subnetEnv ? { values: subnetEnv } : {}) },
    ...(ownLease ? { own: ownFacts(ownLease, now) } : {}),
    leases: store.leases.map(leaseFacts),
    renewMarginMinutes: options.subnetLeaseRenewMargin,
    sysctl,
    bridges: links.filter((l) => l.kind === 'bridge').map((l) => l.name),
    iptables,
    nftTables,
    kernelRelease: release(),
    ...(store.node ? { node: { name: store.node.name, ...(store.node.podCidr ? { podCidr: store.node.podCidr } : {}) } } : {}),
    forwardRules: options.iptablesForwardRules,
    peers: peerFacts,
  }
}

function ownFacts(lease: Lease, now: number): NonNullable<DoctorFacts['own']> {
  const mac = vtepMacOf(lease)
  return {
    ...(lease.subnet ? { subnet: formatCidr(lease.subnet) } : {}),
    ...(lease.attrs.publicIP ? { publicIp: formatIp(lease.attrs.publicIP) } : {}),
    ...(mac ? { vtepMac: mac } : {}),
    ...(lease.expiration !== undefined ? { expiresInSeconds: Math.round((lease.expiration - now) / 1000) } : {}),
  }
}

function vtepMacOf(lease: Lease): string | undefined {
  if (lease.attrs.backendType !== 'vxlan') return undefined
  const decoded = decodeBackendData(lease.attrs.backendData)
  return decoded.ok ? decoded.data.vtepMac : undefined
}

async function deviceFacts(link: Link, run: CommandRunner): Promise<DeviceFacts> {
  const offload = await run('ethtool', ['-k', link.name])
  const m = /^tx-checksum-ip-generic:\s+(on|off)/m.exec(offload.stdout)
  return { name: link.name, mtu: link.mtu, ...(link.mac ? { mac: link.mac } : {}), up: link.up, ...(offload.code === 0 && m ? { txChecksumIpGeneric: m[1] === 'on' } : {}) }
}

async function readEnv(path: string): Promise<Record<string, string> | undefined> {
  try {
    return parseDotEnv(await readFile(path, 'utf8'))
  } catch {
    return undefined
  }
}

async function readSysctls(kernel: Kernel): Promise<DoctorFacts['sysctl']> {
  const read = async (path: string): Promise<string | undefined> => (await kernel.getSysctl(path).catch(() => undefined))?.trim()
  const [ipForward, ipv6Forward, brNfCallIptables, brNfCallIp6tables] = await Promise.all([
    read('net/ipv4/ip_forward'), read('net/ipv6/conf/all/forwarding'),
    read('net/bridge/bridge-nf-call-iptables'), read('net/bridge/bridge-nf-call-ip6tables'),
  ])
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries({ ipForward, ipv6Forward, brNfCallIptables, brNfCallIp6tables })) if (v !== undefined) out[k] = v
  return out
}

async function readIptables(run: CommandRunner, network: string | undefined): Promise<IptablesFacts[]> {
  const out: IptablesFacts[] = []
  for (const variant of ['legacy', 'nft'] as const) {
    const res = await run(`iptables-${variant}-save`, [])
    if (res.code === 0) out.push(parseIptablesSave(variant, res.stdout, network))
  }
  return out
}

async function readNftTables(run: CommandRunner): Promise<string[]> {
  const res = await run('nft', ['list', 'tables'])
  if (res.code !== 0) return []
  return res.stdout.split('\n').map((l) => /^table (ip6?) (flannel-ipv[46])$/.exec(l.trim())).filter((m) => m !== null).map((m) => `${m[1]} ${m[2]}`)
}

async function peerFactsOf(inputs: GatherInputs, peer: NamedLease, device: Link | undefined, devFacts: DeviceFacts | undefined, links: readonly Link[]): Promise<PeerFacts> {
  const { kernel, run } = inputs
  const { lease } = peer
  const subnet = lease.subnet!
  const publicIp = lease.attrs.publicIP ? formatIp(lease.attrs.publicIP) : undefined
  const vtepMac = vtepMacOf(lease)
  const overlayAddr = formatIp(netIp(subnet))
  const nameOf = (index: number | undefined): string | undefined => links.find((l) => l.index === index)?.name
  const routes = await kernel.listRoutes({ family: 4, dst: subnet }).catch(() => [])
  const route = routes.find((r) => netEqual(r.dst, subnet) && (r.type ?? 'unicast') === 'unicast')
  const neighs = device ? await kernel.listNeighs(4, device.index).catch(() => []) : []
  const fdb = device && vtepMac ? (await kernel.listFdb(device.index).catch(() => [])).filter((e) => e.mac === vtepMac) : []
  const underlayRoute = lease.attrs.publicIP ? await kernel.routeGet(lease.attrs.publicIP).catch(() => undefined) : undefined
  const overlayProbed = !inputs.noProbes && devFacts !== undefined
  const [underlay, overlay, overlayFull] = await Promise.all([
    !inputs.noProbes && publicIp ? ping(run, publicIp) : undefined,
    overlayProbed ? ping(run, overlayAddr) : undefined,
    overlayProbed && devFacts ? ping(run, overlayAddr, { dfBytes: devFacts.mtu - 28 }) : undefined,
  ])
  const neigh = neighs.find((n) => ipEqual(n.ip, netIp(subnet)))
  const dev = nameOf(route?.index)
  const underlayDev = nameOf(underlayRoute?.index)
  return {
    name: peer.name,
    ...(publicIp ? { publicIp } : {}),
    subnet: formatCidr(subnet),
    backendType: lease.attrs.backendType,
    ...(vtepMac ? { vtepMac } : {}),
    ...(underlay ? { underlay } : {}),
    ...(overlay ? { overlay } : {}),
    ...(overlayFull && devFacts ? { overlayFull: { ...overlayFull, bytes: devFacts.mtu - 28 } } : {}),
    route: route ? { ...(dev ? { dev } : {}), ...(route.gateway ? { gateway: formatIp(route.gateway) } : {}) } : null,
    ...(device ? { neighMac: neigh?.mac ?? null, fdbDsts: fdb.flatMap((e) => (e.dst ? [formatIp(e.dst)] : [])) } : {}),
    ...(underlayDev ? { underlayDev } : {}),
  }
}
