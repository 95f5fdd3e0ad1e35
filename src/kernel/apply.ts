/**
 * Ordered apply with rollback, the only code in the backends that writes per-peer kernel state.
 *
 * A peer's state is an ordered list of entries (vxlan: neighbour → FDB → route, as flannel's
 * `handleSubnetEvents`; host-gw: one route). Installing walks the list in order and, when an
 * entry fails, deletes the entries installed by this call in reverse before rethrowing, so a
 * route never points at a half-programmed peer. Removal deletes exactly the recorded entries.
 * "Already exists" on install and "not found" on delete count as success (cilium treats ESRCH
 * on delete the same way): the goal is the end state, not the transition.
 */
import type { FdbEntry, Kernel, Neigh, Route, WireGuardPeer } from './kernel.ts'
import { isKernelErrno } from './kernel-error.ts'
import { formatCidr, formatIp, ipEqual, netEqual } from '../ip/ip.ts'

/** One kernel object a backend wants present. */
export type KernelEntry =
  | { readonly kind: 'neigh'; readonly neigh: Neigh }
  | { readonly kind: 'fdb'; readonly fdb: FdbEntry }
  | { readonly kind: 'route'; readonly route: Route }
  /** A WireGuard peer on a device, keyed by its public key. */
  | { readonly kind: 'wgpeer'; readonly device: string; readonly peer: WireGuardPeer }

const MAIN_TABLE = 254

/**
 * Identity of an entry in the kernel: two entries with the same key replace each other.
 * Routes are keyed by table + destination (a replace overwrites gateway and device), neighbours
 * by device + IP, FDB entries by device + MAC (`bridge fdb replace` rewrites the dst).
 */
export function entryKey(entry: KernelEntry): string {
  let key = keyCache.get(entry)
  if (key === undefined) {
    key = computeKey(entry)
    keyCache.set(entry, key)
  }
  return key
}

// Desired entries live long and their keys are asked for on every diff: compute each once.
const keyCache = new WeakMap<KernelEntry, string>()

/** entryKey without the cache, for short-lived objects (notifications, listings). */
export function computeKey(entry: KernelEntry): string {
  switch (entry.kind) {
    case 'route': {
      const { dst } = entry.route
      return `route|${entry.route.table ?? MAIN_TABLE}|${dst.family}|${dst.addr.toString(16)}/${dst.prefix}`
    }
    case 'neigh':
      return `neigh|${entry.neigh.index}|${entry.neigh.ip.family}|${entry.neigh.ip.value.toString(16)}`
    case 'fdb':
      return `fdb|${entry.fdb.index}|${entry.fdb.mac.toLowerCase()}`
    case 'wgpeer':
      return `wgpeer|${entry.device}|${entry.peer.publicKey}`
  }
}

/** Human form for logs: `route 10.5.3.0/24 via 192.168.1.3 dev 2`. */
export function describeEntry(entry: KernelEntry): string {
  switch (entry.kind) {
    case 'route': {
      const r = entry.route
      const via = r.gateway ? ` via ${formatIp(r.gateway)}` : ''
      const dev = r.index === undefined ? '' : ` dev ${r.index}`
      return `route ${formatCidr(r.dst)}${via}${dev}${r.onlink ? ' onlink' : ''}`
    }
    case 'neigh':
      return `neigh ${formatIp(entry.neigh.ip)} lladdr ${entry.neigh.mac ?? '-'} dev ${entry.neigh.index}`
    case 'fdb':
      return `fdb ${entry.fdb.mac}${entry.fdb.dst ? ` dst ${formatIp(entry.fdb.dst)}` : ''} dev ${entry.fdb.index}`
    case 'wgpeer': {
      const { peer } = entry
      const endpoint = peer.endpoint ? ` endpoint ${formatIp(peer.endpoint.ip)}:${peer.endpoint.port}` : ''
      return `wireguard peer ${peer.publicKey}${endpoint} allowed-ips ${peer.allowedIPs.map(formatCidr).join(',')} dev ${entry.device}`
    }
  }
}

/**
 * True when `actual` (as listed or notified by the kernel) satisfies `desired`: every field
 * the backend set must match; fields the kernel fills in (protocol, scope of a plain route,
 * the device of a route given only a gateway) are not compared.
 */
export function entryMatches(desired: KernelEntry, actual: KernelEntry): boolean {
  if (desired.kind !== actual.kind || entryKey(desired) !== computeKey(actual)) return false
  if (desired.kind === 'route' && actual.kind === 'route') {
    const d = desired.route
    const a = actual.route
    if (!netEqual(d.dst, a.dst) || !ipEqual(d.gateway, a.gateway)) return false
    if (d.index !== undefined && d.index !== a.index) return false
    if (d.onlink === true && a.onlink !== true) return false
    if ((d.type ?? 'unicast') !== (a.type ?? 'unicast')) return false
    return true
  }
  if (desired.kind === 'neigh' && actual.kind === 'neigh') {
    const d = desired.neigh
    const a = actual.neigh
    if (d.mac !== undefined && d.mac.toLowerCase() !== a.mac?.toLowerCase()) return false
    return d.state === undefined || d.state === a.state
  }
  if (desired.kind === 'fdb' && actual.kind === 'fdb') {
    return desired.fdb.dst === undefined || ipEqual(desired.fdb.dst, actual.fdb.dst)
  }
  if (desired.kind === 'wgpeer' && actual.kind === 'wgpeer') return wgPeerMatches(desired.peer, actual.peer)
  return false
}

function wgPeerMatches(d: WireGuardPeer, a: WireGuardPeer): boolean {
  if ((d.presharedKey ?? '') !== (a.presharedKey ?? '')) return false
  if ((d.persistentKeepalive ?? 0) !== (a.persistentKeepalive ?? 0)) return false
  if (d.endpoint && (!a.endpoint || !ipEqual(d.endpoint.ip, a.endpoint.ip) || d.endpoint.port !== a.endpoint.port)) return false
  const text = (nets: readonly WireGuardPeer['allowedIPs'][number][]): string => nets.map(formatCidr).sort().join(',')
  return text(d.allowedIPs) === text(a.allowedIPs)
}

async function install(kernel: Kernel, entry: KernelEntry): Promise<void> {
  try {
    switch (entry.kind) {
      case 'neigh': return await kernel.replaceNeigh(entry.neigh)
      case 'fdb': return await kernel.replaceFdb(entry.fdb)
      case 'route': return await kernel.replaceRoute(entry.route)
      case 'wgpeer': return await kernel.configureWireGuard(entry.device, { peers: [entry.peer] })
    }
  } catch (err) {
    if (isKernelErrno(err, 'EEXIST')) return
    throw err
  }
}

/** Deletes one entry; a missing entry (or a missing device, which took it along) is success. */
export async function removeEntry(kernel: Kernel, entry: KernelEntry): Promise<void> {
  try {
    switch (entry.kind) {
      case 'neigh': return await kernel.deleteNeigh(entry.neigh)
      case 'fdb': return await kernel.deleteFdb(entry.fdb)
      case 'route': return await kernel.deleteRoute(entry.route)
      // Removing an absent peer is not an error for WireGuard.
      case 'wgpeer': return await kernel.configureWireGuard(entry.device, { removePeers: [entry.peer.publicKey] })
    }
  } catch (err) {
    if (isKernelErrno(err, 'ENOENT', 'ESRCH', 'ENODEV')) return
    throw err
  }
}

/** Why an ordered apply failed: the entry that failed, and what is still installed after rollback. */
export class ApplyFailure extends Error {
  constructor(
    readonly entry: KernelEntry,
    /** Entries that stay installed: stale ones kept, and any whose rollback failed. */
    readonly installed: readonly KernelEntry[],
    cause: unknown,
  ) {
    super(`failed to install ${describeEntry(entry)}`, { cause })
    this.name = 'ApplyFailure'
  }
}

export interface ApplyResult {
  /** What is installed now for this peer: exactly `next` on success. */
  readonly installed: readonly KernelEntry[]
  /** Deletions of stale entries that failed (they stay in `installed`). */
  readonly errors: readonly unknown[]
}

/**
 * Moves one peer from `previous` (what the record says is installed) to `next`, in order.
 * Entries of `previous` whose key is absent from `next` are deleted after `next` is in place,
 * unless `isShared(key)` says another peer relies on the same object. On failure the entries
 * this call installed are rolled back and an ApplyFailure is thrown.
 */
export async function applyOrdered(
  kernel: Kernel,
  previous: readonly KernelEntry[],
  next: readonly KernelEntry[],
  isShared: (key: string) => boolean = () => false,
): Promise<ApplyResult> {
  const nextKeys = new Set(next.map(entryKey))
  const stale = previous.filter((e) => !nextKeys.has(entryKey(e)))
  const done: KernelEntry[] = []
  for (const [i, entry] of next.entries()) {
    try {
      await install(kernel, entry)
      done.push(entry)
    } catch (err) {
      // Still in the kernel: stale entries, and the previous versions of the entries this call
      // never replaced (the failing one included).
      const byKey = new Map(previous.map((e) => [entryKey(e), e]))
      const untouched = next.slice(i).map((e) => byKey.get(entryKey(e))).filter((e): e is KernelEntry => e !== undefined)
      const left: KernelEntry[] = [...stale, ...untouched]
      for (const undo of done.reverse()) {
        try {
          await removeEntry(kernel, undo)
        } catch {
          left.push(undo)
        }
      }
      throw new ApplyFailure(entry, left, err)
    }
  }
  const result = await removeAll(kernel, stale.filter((e) => !isShared(entryKey(e))))
  return { installed: [...next, ...result.left], errors: result.errors }
}

/**
 * Deletes every entry (the route first, so traffic stops before its neighbour goes), trying
 * all of them even when some fail. Returns the ones that could not be deleted.
 */
export async function removeAll(kernel: Kernel, entries: readonly KernelEntry[]): Promise<{ left: KernelEntry[]; errors: unknown[] }> {
  const left: KernelEntry[] = []
  const errors: unknown[] = []
  for (const entry of [...entries].reverse()) {
    try {
      await removeEntry(kernel, entry)
    } catch (err) {
      left.push(entry)
      errors.push(err)
    }
  }
  return { left, errors }
}
