/**
 * A weftd's own probe row, served on its health port at /probes: its overlay probe of every
 * peer (ok, fail or unknown, with the round trip). The peers come from the kernel state weftd
 * programmed (vxlan: route → neighbour → FDB gives subnet, overlay address and public IP;
 * route backends: the gateway), so the row costs the store nothing. Probing runs only while
 * someone reads the row (a dashboard polls it), and stops a while after the last read.
 *
 * The probe is a TCP connection to the peer's health port at its overlay address: a SYN-ACK or
 * a reset both prove the overlay carries packets both ways, and the time to either is one round
 * trip. It needs no child process (spawning `ping` every second cost weftd ~7 MiB of RSS) and no
 * raw socket; a firewall that drops that TCP port shows as `fail`.
 */
import type { Kernel, Link, Route, Neigh, FdbEntry } from '../kernel/kernel.ts'
import { connect } from 'node:net'
import type { HealthRoute } from '../daemon/healthz.ts'
import type { DaemonStatusReport } from '../daemon/daemon-status.ts'
import { formatCidr, formatIp, ipEqual, netContainsNet, parseCidr } from '../ip/ip.ts'

export type ProbeState = 'ok' | 'fail' | 'unknown'

export interface ProbeCell {
  /** The peer's public IP. */
  readonly to: string
  readonly subnet: string
  readonly state: ProbeState
  readonly rttMs?: number
  /** Epoch ms of the last probe. */
  readonly at?: number
}

export interface ProbeRow {
  /** This host's public IP. */
  readonly host: string
  readonly subnet?: string
  readonly network?: string
  readonly mtu?: number
  readonly backend: string
  readonly ready: boolean
  /** ISO time the lease expires; null for none (kube, reservation). */
  readonly leaseExpiresAt?: string | null
  readonly lastError?: { readonly time: string; readonly message: string }
  /** Kernel entries weftd put back (with --metrics-addr, which counts them). */
  readonly repairs?: number
  readonly at: number
  readonly probes: readonly ProbeCell[]
}

/** A peer as this host's kernel knows it. */
export interface KernelPeer {
  readonly publicIp: string
  readonly subnet: string
  /** What to ping: the peer's overlay address (vxlan), else its public IP (host-gw: the route is the overlay). */
  readonly target: string
}

/** Pure: peers from the kernel tables. */
export function peersFromKernel(links: readonly Link[], routes: readonly Route[], neighs: readonly Neigh[], fdb: readonly FdbEntry[], network: string | undefined): { backend: string; peers: KernelPeer[] } {
  const vxlan = links.find((l) => l.kind === 'vxlan' && /^flannel\.\d+$/.test(l.name))
  const net = network ? parseCidr(network) : undefined
  const inNetwork = (r: Route): boolean => net === undefined || (r.dst.family === net.family && netContainsNet(net, r.dst))
  const peers: KernelPeer[] = []
  for (const r of routes) {
    if (!r.gateway || r.dst.prefix === 0 || !inNetwork(r)) continue
    if (vxlan && r.index === vxlan.index) {
      const mac = neighs.find((n) => n.index === vxlan.index && ipEqual(n.ip, r.gateway))?.mac
      const dst = mac ? fdb.find((e) => e.index === vxlan.index && e.mac === mac && e.dst)?.dst : undefined
      if (dst) peers.push({ publicIp: formatIp(dst), subnet: formatCidr(r.dst), target: formatIp(r.gateway) })
    } else if (!links.find((l) => l.index === r.index && l.name.startsWith('flannel'))) {
      // host-gw, or vxlan DirectRouting: the route via the peer's public IP is the overlay.
      peers.push({ publicIp: formatIp(r.gateway), subnet: formatCidr(r.dst), target: formatIp(r.gateway) })
    }
  }
  const backend = vxlan ? 'vxlan' : links.some((l) => l.name === 'flannel0') ? 'udp' : 'host-gw'
  return { backend, peers: peers.sort((a, b) => a.publicIp.localeCompare(b.publicIp, 'en', { numeric: true })) }
}

export interface ProbeServiceInputs {
  readonly kernel: Kernel
  /** Probes one target; default a TCP connection to `port` (the peers' health port). */
  readonly probe?: (target: string) => Promise<{ ok: boolean; rttMs?: number }>
  /** The health port, which every weftd of the cluster is assumed to share. */
  readonly port: number
  /** The daemon's /status report: lease, backend, readiness, last error. */
  readonly status: () => DaemonStatusReport
  /** This host's public IP, once the interface is chosen (before the lease names it). */
  readonly publicIp: () => string | undefined
  readonly now?: () => number
  /** Between probe rounds (default 1000 ms). */
  readonly intervalMs?: number
  /** Probing stops this long after the last read (default 30 s). */
  readonly idleMs?: number
}

/** The /probes route; probing stops with the signal. */
export function probeRowRoute(inputs: ProbeServiceInputs, signal: AbortSignal): HealthRoute {
  const now = inputs.now ?? Date.now
  const intervalMs = inputs.intervalMs ?? 1000
  const idleMs = inputs.idleMs ?? 30_000
  const probe = inputs.probe ?? ((target: string) => tcpProbe(target, inputs.port, 1000))
  const results = new Map<string, { state: ProbeState; rttMs?: number; at: number }>()
  let lastRead = 0
  let running = false
  let last: { backend: string; peers: KernelPeer[] } = { backend: 'unknown', peers: [] }

  let listedAt = -Infinity
  const round = async (): Promise<void> => {
    // The peer list changes rarely: the kernel tables and subnet.env are re-read every 10 rounds.
    if (now() - listedAt >= 10 * intervalMs) {
      await listPeers()
      listedAt = now()
    }
    await Promise.all(last.peers.map(async (p) => {
      const r = await probe(p.target)
      results.set(p.publicIp, { state: r.ok ? 'ok' : 'fail', ...(r.rttMs !== undefined ? { rttMs: r.rttMs } : {}), at: now() })
    }))
  }
  const listPeers = async (): Promise<void> => {
    const { kernel } = inputs
    const links = await kernel.listLinks()
    const vx = links.find((l) => l.kind === 'vxlan' && /^flannel\.\d+$/.test(l.name))
    const [routes, neighs, fdb] = await Promise.all([
      kernel.listRoutes({ family: 4 }),
      vx ? kernel.listNeighs(4, vx.index) : Promise.resolve([]),
      vx ? kernel.listFdb(vx.index) : Promise.resolve([]),
    ])
    last = peersFromKernel(links, routes, neighs, fdb, inputs.status().network)
  }
  const loop = async (): Promise<void> => {
    running = true
    try {
      while (!signal.aborted && now() - lastRead < idleMs) {
        const started = now()
        await round().catch(() => {})
        const wait = Math.max(50, intervalMs - (now() - started))
        await new Promise((r) => setTimeout(r, wait).unref())
      }
    } finally {
      running = false
    }
  }

  return () => {
    lastRead = now()
    if (!running && !signal.aborted) void loop()
    const st = inputs.status()
    const repairs = st.counters['kernelRepairs']
    const row: ProbeRow = {
      host: st.lease?.publicIP ?? inputs.publicIp() ?? '?',
      ...(st.lease?.subnet ? { subnet: st.lease.subnet } : {}),
      ...(st.network ? { network: st.network } : {}),
      ...(st.lease?.mtu ? { mtu: st.lease.mtu } : {}),
      backend: st.backend ?? last.backend,
      ready: st.ready,
      ...(st.lease ? { leaseExpiresAt: st.lease.expiresAt } : {}),
      ...(st.lastError ? { lastError: st.lastError } : {}),
      ...(repairs !== undefined ? { repairs } : {}),
      at: now(),
      probes: last.peers.map((p) => {
        const r = results.get(p.publicIp)
        // A result older than three rounds says nothing about now.
        const fresh = r && now() - r.at < 3 * intervalMs + 2000
        return { to: p.publicIp, subnet: p.subnet, state: fresh ? r.state : 'unknown', ...(fresh && r.rttMs !== undefined ? { rttMs: r.rttMs } : {}), ...(r ? { at: r.at } : {}) }
      }),
    }
    return { status: 200, contentType: 'application/json', body: JSON.stringify(row) }
  }
}

/** Connects to target:port; an answer (connected or refused) within `timeoutMs` is `ok`. */
export function tcpProbe(target: string, port: number, timeoutMs: number): Promise<{ ok: boolean; rttMs?: number }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint()
    const rtt = (): number => Math.round(Number(process.hrtime.bigint() - t0) / 10_000) / 100
    const socket = connect({ host: target, port })
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok ? { ok, rttMs: rtt() } : { ok })
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('connect', () => done(true))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'))
  })
}
