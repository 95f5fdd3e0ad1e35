/**
 * Peers from a list + watch of all nodes, as client-go's reflector does it but without its
 * pitfalls: the resourceVersion is kept across watch timeouts and errors (bookmarks keep it
 * fresh), a 410 Expired re-lists and yields a full snapshot that the backend diffs against what
 * it programmed, errors back off with jitter (100 ms → 5 s) and never end the watch, and one
 * failing page or event never stops it for good (kubernetes-client/javascript #2385).
 */
import { isWeftError } from '../../errors.ts'
import type { LeaseWatchResult } from '../../lease/lease.ts'
import type { Logger } from '../../log/logger.ts'
import type { Clock } from '../../util/clock.ts'
import type { KubeApi } from './kube-api.ts'
import type { KubeNode, NodeList } from './kube-types.ts'
import type { NodePeers } from './node-peers.ts'
import type { StoreRecorder } from '../../metrics/recorder.ts'

export interface NodeWatchDeps {
  readonly api: KubeApi
  readonly peers: NodePeers
  readonly logger: Logger
  readonly clock: Clock
  /** A list made earlier (start-up prefetch); asked for once, used if it succeeded. */
  readonly initialList?: () => Promise<FullList | undefined> | undefined
  /** Page size of the list (the API server's default chunking is 500). */
  readonly pageSize?: number
  readonly random?: () => number
  readonly metrics?: StoreRecorder
}

export interface FullList {
  readonly resourceVersion: string
  readonly items: readonly KubeNode[]
}

const BACKOFF_BASE_MS = 100
const BACKOFF_MAX_MS = 5000

/** Lists every node, following continue tokens; the first page's resourceVersion is the list's. */
export async function listAllNodes(api: KubeApi, pageSize: number, signal: AbortSignal): Promise<FullList> {
  const items: KubeNode[] = []
  let page: NodeList = await api.listNodes({ limit: pageSize }, signal)
  const resourceVersion = page.resourceVersion
  for (;;) {
    for (const node of page.items) items.push(node)
    if (!page.continue) return { resourceVersion, items }
    page = await api.listNodes({ limit: pageSize, continue: page.continue }, signal)
  }
}

/**
 * Lists (or takes the early list) and resets the peers; returns the list's resourceVersion. Its
 * own function, so the 5,000-node listing is garbage once it returns: a suspended generator
 * keeps every local it held.
 */
async function relist(deps: NodeWatchDeps, early: Promise<FullList | undefined> | undefined, signal: AbortSignal): Promise<string> {
  const listed = (await early) ?? (await listAllNodes(deps.api, deps.pageSize ?? 500, signal))
  deps.peers.reset(listed.items)
  deps.logger.debug('nodes listed', { nodes: listed.items.length, peers: deps.peers.size, resourceVersion: listed.resourceVersion })
  return listed.resourceVersion
}

export async function* watchNodeLeases(deps: NodeWatchDeps, signal: AbortSignal): AsyncGenerator<LeaseWatchResult> {
  const { api, peers, logger, clock } = deps
  const random = deps.random ?? Math.random
  let initial = deps.initialList
  let from: string | undefined
  let failures = 0
  while (!signal.aborted) {
    try {
      if (from === undefined) {
        const takeEarly = initial
        initial = undefined
        from = await relist(deps, takeEarly?.(), signal)
        failures = 0
        yield { kind: 'snapshot', leases: peers.all() }
      }
      // A server-side timeout of 5–10 min spreads re-watches, as client-go's reflector does.
      const timeoutSeconds = 300 + Math.floor(random() * 300)
      for await (const event of api.watchNodes(from, { timeoutSeconds, allowWatchBookmarks: true }, signal)) {
        failures = 0
        if (event.type === 'BOOKMARK') {
          from = event.resourceVersion
          continue
        }
        from = event.object.metadata.resourceVersion ?? from
        const events = event.type === 'DELETED' ? peers.remove(event.object.metadata.name) : peers.apply(event.object)
        if (events.length > 0) yield { kind: 'events', events }
      }
      // The server ended the stream (its timeout): watch again from where we are.
    } catch (err) {
      if (signal.aborted) return
      deps.metrics?.watchRestart('kube', isWeftError(err, 'REGISTRY_COMPACTED') ? '410' : 'error')
      if (isWeftError(err, 'REGISTRY_COMPACTED')) {
        logger.info('node watch expired (410); re-listing nodes', { resourceVersion: from })
        from = undefined
        continue
      }
      // Full jitter keeps a restarted API server from being hit by every node at once.
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(failures++, 10))
      const delay = Math.round(cap / 2 + random() * (cap / 2))
      logger.warn('node watch failed; retrying', { retryInMs: delay, resourceVersion: from }, err)
      await clock.sleep(delay, signal).catch(() => {})
    }
  }
}
