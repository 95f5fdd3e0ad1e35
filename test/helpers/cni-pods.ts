/**
 * Pods made the way a container runtime makes them: a namespace, then `weft` as the CNI plugin
 * (CNI_COMMAND=ADD) run inside the host, which delegates to the real bridge + host-local plugins.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestHost } from './testbed.ts'
import type { Pod } from './pods.ts'
import { nsExec } from './netns.ts'

const WEFT = fileURLToPath(new URL('../../bin/weft', import.meta.url))
/** Where Debian's containernetworking-plugins puts bridge and host-local. */
export const CNI_PATH = process.env.CNI_PATH ?? '/usr/lib/cni'

export function cniPluginsAvailable(): boolean {
  return CNI_PATH.split(':').some((dir) => existsSync(join(dir, 'bridge')) && existsSync(join(dir, 'host-local')))
}

export interface CniPodOptions {
  readonly name: string
  /** The host's subnet.env, as weftd wrote it. */
  readonly subnetFile: string
  /** Per-host scratch directory for the plugin's and host-local's state. */
  readonly stateDir: string
}

/** Runs CNI ADD for a new pod namespace on `host`; the pod gets its address from host-local. */
export async function addPodViaCni(host: TestHost, opts: CniPodOptions): Promise<Pod> {
  const netns = await host.addNamespace(opts.name)
  mkdirSync(opts.stateDir, { recursive: true })
  const conf = {
    cniVersion: '1.0.0', name: 'weft', type: 'weft',
    subnetFile: opts.subnetFile, dataDir: join(opts.stateDir, 'weft'),
    ipam: { dataDir: join(opts.stateDir, 'ipam') },
    // As flannel's own manifest (kube-flannel.yml) configures the delegate: pods get a default
    // route via cni0, so replies to masqueraded (host-address) sources find their way back.
    delegate: { hairpinMode: true, isDefaultGateway: true },
  }
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: `demo-${opts.name}`, CNI_NETNS: `/var/run/netns/${netns}`, CNI_IFNAME: 'eth0', CNI_PATH }
  const r = await nsExec(host.netns, ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, WEFT], { input: JSON.stringify(conf), allowFailure: true, timeoutMs: 20_000 })
  if (r.code !== 0) throw new Error(`CNI ADD for ${opts.name} on ${host.name} failed (exit ${r.code}): ${r.stdout.trim()} ${r.stderr.trim()}`)
  const result = JSON.parse(r.stdout) as { ips?: Array<{ address: string; gateway?: string }> }
  const ips = result.ips ?? []
  const v4 = ips.find((i) => !i.address.includes(':'))
  const v6 = ips.find((i) => i.address.includes(':'))
  if (!v4) throw new Error(`CNI ADD for ${opts.name} returned no IPv4 address: ${r.stdout}`)
  return {
    name: opts.name,
    host,
    netns,
    ip: v4.address.split('/')[0] as string,
    gateway: v4.gateway ?? '',
    ...(v6 ? { ipv6: v6.address.split('/')[0] as string, gatewayV6: v6.gateway ?? '' } : {}),
    exec: (...argv) => nsExec(netns, argv),
    run: (argv, o) => nsExec(netns, argv, o),
  }
}
