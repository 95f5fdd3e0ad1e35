/**
 * kube-controller-manager's node IPAM (`--allocate-node-cidrs --cluster-cidr ... --node-cidr-mask-size`)
 * in its RangeAllocator form: every node without spec.podCIDRs gets the next free block of each
 * cluster CIDR (one per IP family for dual stack), written as an update of the node (a MODIFIED
 * event); a deleted node's blocks are released. Nodes that already have podCIDRs keep them.
 */
import type { ObjectStore, StoreEvent } from './object-store.ts'
import type { JsonMap } from './strategic-merge.ts'

export interface IpamConfig {
  /** e.g. ['10.244.0.0/16'] or ['10.244.0.0/16', 'fd00:10:244::/56'] */
  clusterCidrs: string[]
  /** Per family; default 24 (IPv4) and 64 (IPv6), as kube-controller-manager. */
  nodeMaskV4?: number
  nodeMaskV6?: number
}

interface CidrSet { base: bigint; bits: number; prefix: number; mask: number; v6: boolean; used: Set<bigint>; next: bigint; size: bigint }

function parseAddr(a: string): { value: bigint; v6: boolean } {
  if (!a.includes(':')) return { value: a.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n), v6: false }
  const [head, tail] = a.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  return { value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n), v6: true }
}

function formatAddr(v: bigint, v6: boolean): string {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.')
  const groups = Array.from({ length: 8 }, (_, i) => ((v >> BigInt((7 - i) * 16)) & 0xffffn).toString(16))
  // Compress the longest run of zero groups, as Go's net.IP.String does.
  let best = -1, bestLen = 0
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i }
    i = j
  }
  if (best < 0) return groups.join(':')
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

export class NodeIpam {
  private sets: CidrSet[] = []
  private enabled = false
  private readonly pending = new Set<string>()
  private unsubscribe: (() => void) | undefined

  constructor(private readonly store: ObjectStore, private readonly writeNode: (name: string, cidrs: string[]) => void, private readonly delayMs = 0) {}

  get isEnabled(): boolean { return this.enabled }

  configure(cfg: IpamConfig | undefined): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.enabled = false
    this.sets = []
    if (!cfg || cfg.clusterCidrs.length === 0) return
    this.sets = cfg.clusterCidrs.map((c) => {
      const [addr, p] = c.split('/') as [string, string]
      const { value, v6 } = parseAddr(addr)
      const bits = v6 ? 128 : 32
      const prefix = Number(p)
      const mask = v6 ? (cfg.nodeMaskV6 ?? 64) : (cfg.nodeMaskV4 ?? 24)
      if (mask < prefix) throw new Error(`node mask /${mask} is larger than cluster CIDR ${c}`)
      return { base: value, bits, prefix, mask, v6, used: new Set<bigint>(), next: 0n, size: 1n << BigInt(mask - prefix) }
    })
    this.enabled = true
    for (const key of this.store.keys('nodes')) this.reserve(this.store.get('nodes', key)!.obj)
    this.unsubscribe = this.store.onEvent((ev) => this.onEvent(ev))
    for (const key of this.store.keys('nodes')) this.consider(key, this.store.get('nodes', key)!.obj)
  }

  private indexOf(set: CidrSet, cidr: string): bigint | undefined {
    const [addr, p] = cidr.split('/') as [string, string]
    const { value, v6 } = parseAddr(addr)
    if (v6 !== set.v6 || Number(p) !== set.mask) return undefined
    const offset = value - set.base
    const step = 1n << BigInt(set.bits - set.mask)
    if (offset < 0n || offset % step !== 0n || offset / step >= set.size) return undefined
    return offset / step
  }

  private cidrsOf(obj: JsonMap): string[] {
    const spec = (obj.spec ?? {}) as JsonMap
    return Array.isArray(spec.podCIDRs) ? spec.podCIDRs.filter((c): c is string => typeof c === 'string') : []
  }

  private reserve(obj: JsonMap): void {
    for (const c of this.cidrsOf(obj)) for (const s of this.sets) { const i = this.indexOf(s, c); if (i !== undefined) s.used.add(i) }
  }

  private release(obj: JsonMap): void {
    for (const c of this.cidrsOf(obj)) for (const s of this.sets) { const i = this.indexOf(s, c); if (i !== undefined) s.used.delete(i) }
  }

  private onEvent(ev: StoreEvent): void {
    if (ev.resource !== 'nodes') return
    if (ev.type === 'DELETED') { this.release(ev.object.obj); return }
    this.reserve(ev.object.obj)
    this.consider(ev.key, ev.object.obj)
  }

  private consider(name: string, obj: JsonMap): void {
    if (!this.enabled || this.cidrsOf(obj).length > 0 || this.pending.has(name)) return
    this.pending.add(name)
    // The controller reacts to the informer event, after the create returned.
    setTimeout(() => {
      this.pending.delete(name)
      const cur = this.store.get('nodes', name)
      if (!this.enabled || !cur || this.cidrsOf(cur.obj).length > 0) return
      const cidrs: string[] = []
      for (const s of this.sets) {
        const i = this.allocate(s)
        if (i === undefined) return // CIDRNotAvailable: the node stays without a podCIDR
        cidrs.push(`${formatAddr(s.base + i * (1n << BigInt(s.bits - s.mask)), s.v6)}/${s.mask}`)
      }
      this.writeNode(name, cidrs)
    }, this.delayMs)
  }

  /** The cidrset's round-robin search from the last allocation. */
  private allocate(s: CidrSet): bigint | undefined {
    for (let n = 0n; n < s.size; n++) {
      const i = (s.next + n) % s.size
      if (!s.used.has(i)) { s.used.add(i); s.next = (i + 1n) % s.size; return i }
    }
    return undefined
  }
}
