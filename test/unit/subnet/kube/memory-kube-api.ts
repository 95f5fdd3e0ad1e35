/**
 * An in-memory KubeApi for unit tests: nodes with a global resourceVersion, an event history
 * that can be compacted (a watch from before it throws 410), annotation/condition patches with
 * the strategic-merge rules weft relies on, and fault injection. The wire protocol itself is
 * tested against the emulator in test/emulators/kube.
 */
import { KubeApiError, type KubeApi, type ListOptions, type WatchOptions } from '../../../../src/subnet/kube/kube-api.ts'
import type { KubeNode, KubePod, NodeCondition, NodeList, NodeWatchEvent, PatchType } from '../../../../src/subnet/kube/kube-types.ts'

type Event = { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; node: KubeNode }

export class MemoryKubeApi implements KubeApi {
  readonly server = 'https://kube.test:6443'
  private rv = 1
  private compactedTo = 0
  private readonly nodes = new Map<string, KubeNode>()
  private readonly pods = new Map<string, KubePod>()
  private readonly history: Event[] = []
  private readonly waiters = new Set<() => void>()
  readonly calls: string[] = []
  /** Errors thrown by the next calls, in order. */
  readonly failNext: Error[] = []
  private watchEnders = new Set<(err?: Error) => void>()

  putNode(name: string, spec: KubeNode['spec'] = {}, annotations: Record<string, string> = {}): KubeNode {
    const existed = this.nodes.has(name)
    const node: KubeNode = { metadata: { name, uid: `uid-${name}`, resourceVersion: String(++this.rv), annotations }, spec, status: this.nodes.get(name)?.status ?? {} }
    this.nodes.set(name, node)
    this.emit(existed ? 'MODIFIED' : 'ADDED', node)
    return node
  }

  deleteNode(name: string): void {
    const node = this.nodes.get(name)
    if (!node) return
    this.nodes.delete(name)
    this.emit('DELETED', { ...node, metadata: { ...node.metadata, resourceVersion: String(++this.rv) } })
  }

  putPod(namespace: string, name: string, nodeName: string): void {
    this.pods.set(`${namespace}/${name}`, { metadata: { name, namespace }, spec: { nodeName } })
  }

  node(name: string): KubeNode | undefined {
    return this.nodes.get(name)
  }

  /** Forgets the history: watches from an older resourceVersion get 410. */
  compact(): void {
    this.compactedTo = this.rv
    this.history.length = 0
  }

  /** Ends every open watch, with an error or as a server timeout. */
  endWatches(err?: Error): void {
    for (const end of this.watchEnders) end(err)
  }

  async getNode(name: string): Promise<KubeNode> {
    this.record(`get node ${name}`)
    const node = this.nodes.get(name)
    if (!node) throw new KubeApiError(404, 'NotFound', `nodes "${name}" not found`)
    return node
  }

  async getPod(namespace: string, name: string): Promise<KubePod> {
    this.record(`get pod ${namespace}/${name}`)
    const pod = this.pods.get(`${namespace}/${name}`)
    if (!pod) throw new KubeApiError(404, 'NotFound', `pods "${name}" not found`)
    return pod
  }

  async listNodes(options: ListOptions): Promise<NodeList> {
    this.record(`list nodes${options.continue ? ' continue' : ''}`)
    const all = [...this.nodes.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
    const start = options.continue ? Number(options.continue) : 0
    const end = options.limit ? start + options.limit : all.length
    return { resourceVersion: String(this.rv), items: all.slice(start, end), ...(end < all.length ? { continue: String(end) } : {}) }
  }

  async *watchNodes(resourceVersion: string, _options: WatchOptions, signal: AbortSignal): AsyncIterable<NodeWatchEvent> {
    this.record('watch nodes')
    let from = Number(resourceVersion)
    if (from < this.compactedTo) throw new KubeApiError(410, 'Expired', `too old resource version: ${from} (${this.compactedTo})`)
    let ended: { err?: Error } | undefined
    const end = (err?: Error): void => { ended = err ? { err } : {}; wake() }
    let wake = (): void => {}
    this.watchEnders.add(end)
    try {
      for (;;) {
        for (const e of this.history) {
          if (e.rv <= from) continue
          from = e.rv
          yield { type: e.type, object: e.node }
        }
        if (ended) {
          if (ended.err) throw ended.err
          return
        }
        if (signal.aborted) throw signal.reason
        await new Promise<void>((resolve) => {
          wake = resolve
          this.waiters.add(resolve)
          signal.addEventListener('abort', () => resolve(), { once: true })
        })
      }
    } finally {
      this.watchEnders.delete(end)
    }
  }

  async patchNodeStatus(name: string, patch: unknown, type: PatchType): Promise<KubeNode> {
    this.record(`patch node ${name} status ${type}`)
    const node = this.nodes.get(name)
    if (!node) throw new KubeApiError(404, 'NotFound', `nodes "${name}" not found`)
    const p = patch as { metadata?: { annotations?: Record<string, string | null> }; status?: { conditions?: NodeCondition[] } }
    const annotations: Record<string, string> = { ...node.metadata.annotations }
    for (const [k, v] of Object.entries(p.metadata?.annotations ?? {})) {
      if (v === null) delete annotations[k]
      else annotations[k] = v
    }
    const conditions = [...(node.status?.conditions ?? [])]
    for (const c of p.status?.conditions ?? []) {
      const i = conditions.findIndex((x) => x.type === c.type)
      if (i >= 0) conditions[i] = { ...conditions[i], ...c }
      else conditions.push(c)
    }
    const next: KubeNode = { metadata: { ...node.metadata, annotations, resourceVersion: String(++this.rv) }, spec: node.spec, status: { conditions } }
    this.nodes.set(name, next)
    this.emit('MODIFIED', next)
    return next
  }

  close(): void {}

  private record(call: string): void {
    this.calls.push(call)
    const err = this.failNext.shift()
    if (err) throw err
  }

  private emit(type: Event['type'], node: KubeNode): void {
    this.history.push({ rv: this.rv, type, node })
    for (const w of this.waiters) w()
    this.waiters.clear()
  }
}
