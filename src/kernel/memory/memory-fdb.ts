/**
 * MemoryKernel's bridge forwarding database, following the vxlan driver: one record per
 * (device, MAC) holding one or more remote dsts; `replace` rewrites the first dst of a unicast
 * MAC, `append` adds dsts only to all-zero/multicast MACs, and a delete whose dst does not match
 * an existing MAC is a silent no-op. Errors are thrown as KernelErrors for the caller to log.
 */
import { ipEqual, type IpAddr } from '../../ip/ip.ts'
import { normalizeMac } from '../describe.ts'
import { KernelError } from '../kernel-error.ts'
import type { FdbEntry, Link } from '../kernel.ts'

interface FdbRec {
  readonly index: number
  readonly mac: string
  readonly dsts: (IpAddr | undefined)[]
}

export function fdbOut(index: number, mac: string, dst: IpAddr | undefined): FdbEntry {
  return { index, mac, self: true, state: 'permanent', ...(dst ? { dst } : {}) }
}

export class MemoryFdb {
  private readonly recs = new Map<string, FdbRec>()

  /** Applies replace/append on `link`; returns the entry to notify, or undefined when nothing changed. */
  update(entry: FdbEntry, mode: 'replace' | 'append', link: Link, what: string): FdbEntry | undefined {
    const fail = (errno: string): never => { throw new KernelError(mode, what, errno) }
    const mac = normalizeMac(entry.mac) ?? fail('EINVAL')
    if (!link.vxlan) fail('EOPNOTSUPP')
    if (entry.dst && entry.dst.family !== (link.vxlan?.local?.family ?? 4)) fail('EAFNOSUPPORT')
    if (entry.state && entry.state !== 'permanent' && entry.state !== 'reachable') fail('EINVAL')
    const group = mac === '00:00:00:00:00:00' || (parseInt(mac.slice(0, 2), 16) & 1) === 1
    const key = `${entry.index}|${mac}`
    const rec = this.recs.get(key)
    if (!rec) {
      if (mode === 'replace' && group) fail('EOPNOTSUPP')
      this.recs.set(key, { index: entry.index, mac, dsts: [entry.dst] })
      return fdbOut(entry.index, mac, entry.dst)
    }
    if (mode === 'replace') {
      if (group) fail('EOPNOTSUPP')
      if (ipEqual(rec.dsts[0], entry.dst)) return undefined
      rec.dsts[0] = entry.dst
    } else {
      // Like vxlan_fdb_update_existing: appending is only meaningful for all-zero/multicast MACs.
      if (!group || rec.dsts.some((d) => ipEqual(d, entry.dst))) return undefined
      rec.dsts.push(entry.dst)
    }
    return fdbOut(entry.index, mac, entry.dst)
  }

  /** Removes one dst (or the whole MAC without dst); returns the removed entries. ENOENT when the MAC is absent. */
  delete(entry: FdbEntry, what: string): FdbEntry[] {
    const mac = normalizeMac(entry.mac) ?? ''
    const key = `${entry.index}|${mac}`
    const rec = this.recs.get(key)
    if (!rec) throw new KernelError('delete', what, 'ENOENT')
    const i = entry.dst ? rec.dsts.findIndex((d) => ipEqual(d, entry.dst)) : -1
    // Linux answers success and changes nothing when the MAC exists but the dst does not match.
    if (entry.dst && i < 0) return []
    if (i >= 0 && rec.dsts.length > 1) return rec.dsts.splice(i, 1).map((d) => fdbOut(rec.index, mac, d))
    this.recs.delete(key)
    return rec.dsts.map((d) => fdbOut(rec.index, mac, d))
  }

  removeLink(index: number): void {
    for (const [k, r] of [...this.recs]) if (r.index === index) this.recs.delete(k)
  }

  /** Every (MAC, dst) pair, ordered by device and MAC. */
  entries(): FdbEntry[] {
    const out: FdbEntry[] = []
    const recs = [...this.recs.values()].sort((a, b) => a.index - b.index || (a.mac < b.mac ? -1 : 1))
    for (const rec of recs) for (const dst of rec.dsts) out.push(fdbOut(rec.index, rec.mac, dst))
    return out
  }
}
