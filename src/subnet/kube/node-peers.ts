/**
 * The peers' leases, keyed by node name, and the diff each node change makes (pure). flannel
 * reacts to a node update only when the annotation triple changed, drops a v4 change whenever
 * the v6 triple is unchanged (reference §4.1), and never withdraws a node that stops being
 * valid. weft compares the whole lease per node instead: a changed subnet is a removal plus an
 * addition, a node that loses its marker or its data is withdrawn, nothing is reported twice.
 */
import type { Family } from '../../ip/ip.ts'
import type { Lease, LeaseEvent } from '../../lease/lease.ts'
import { leaseIdentity } from '../../lease/lease-watcher.ts'
import { sameLease } from '../../backend/lease-validation.ts'
import type { AnnotationNames } from './annotations.ts'
import type { KubeNode } from './kube-types.ts'
import { isManagedNode, nodeToLease } from './node-lease.ts'

export interface NodePeersOptions {
  readonly names: AnnotationNames
  readonly families: readonly Family[]
  /** This host's node: never a peer. */
  readonly ownNode: string
  /** Told once per node and distinct reason when a managed node's data is unusable. */
  readonly onBadNode: (node: string, reason: string) => void
}

export class NodePeers {
  private readonly leases = new Map<string, Lease>()
  private readonly complaints = new Map<string, string>()

  constructor(private readonly options: NodePeersOptions) {}

  get size(): number {
    return this.leases.size
  }

  all(): Lease[] {
    return [...this.leases.values()]
  }

  /** Replaces every peer with the nodes of a full list; returns nothing (a snapshot follows). */
  reset(nodes: Iterable<KubeNode>): void {
    this.leases.clear()
    for (const node of nodes) this.apply(node)
  }

  /** An ADDED or MODIFIED node: the events it causes (none when its lease is unchanged). */
  apply(node: KubeNode): LeaseEvent[] {
    const name = node.metadata.name
    if (name === this.options.ownNode) return []
    const next = this.leaseOf(node)
    const prev = this.leases.get(name)
    if (!next) return prev ? this.remove(name) : []
    this.leases.set(name, next)
    if (!prev) return [{ type: 'added', lease: next }]
    if (leaseIdentity(prev) !== leaseIdentity(next)) return [{ type: 'removed', lease: prev }, { type: 'added', lease: next }]
    return sameLease(prev, next) ? [] : [{ type: 'added', lease: next }]
  }

  /** A DELETED node. */
  remove(name: string): LeaseEvent[] {
    const prev = this.leases.get(name)
    this.leases.delete(name)
    this.complaints.delete(name)
    return prev ? [{ type: 'removed', lease: prev }] : []
  }

  private leaseOf(node: KubeNode): Lease | undefined {
    if (!isManagedNode(node, this.options.names)) return undefined
    const result = nodeToLease(node, this.options.names, this.options.families)
    const name = node.metadata.name
    if (result.ok) {
      this.complaints.delete(name)
      return result.lease
    }
    if (this.complaints.get(name) !== result.reason) {
      this.complaints.set(name, result.reason)
      this.options.onBadNode(name, result.reason)
    }
    return undefined
  }
}
