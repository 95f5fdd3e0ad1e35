/**
 * The narrow Kubernetes API the kube subnet manager is written against (design §3: get/patch
 * node, list/watch nodes, get pod). `http-kube-api.ts` speaks it over node:http(s); tests may
 * point it at the API emulator in test/emulators/kube.
 */
import { WeftError, type ErrorCode } from '../../errors.ts'
import type { KubeNode, KubePod, NodeList, NodeWatchEvent, PatchType } from './kube-types.ts'

export interface ListOptions {
  /** '0' lets the server answer from its cache; undefined asks for a consistent read. */
  readonly resourceVersion?: string
  readonly limit?: number
  readonly continue?: string
}

export interface WatchOptions {
  /** Server-side timeout of this watch; the caller renews it when the stream ends. */
  readonly timeoutSeconds?: number
  /** Default true: ask for BOOKMARK events, so a re-watch resumes from a recent resourceVersion. */
  readonly allowWatchBookmarks?: boolean
  /** e.g. `metadata.name=node-1`: only that node's events. */
  readonly fieldSelector?: string
}

export interface KubeApi {
  /** The API server's URL, for error messages ("https://10.0.0.1:6443"). */
  readonly server: string
  getNode(name: string, signal: AbortSignal): Promise<KubeNode>
  getPod(namespace: string, name: string, signal: AbortSignal): Promise<KubePod>
  listNodes(options: ListOptions, signal: AbortSignal): Promise<NodeList>
  /**
   * Watches nodes from `resourceVersion`. The iterable ends when the server closes the stream
   * (its timeout); it throws KubeApiError on an HTTP error or a watch ERROR event (410 Expired →
   * code REGISTRY_COMPACTED), and on a broken connection (REGISTRY_UNAVAILABLE).
   */
  watchNodes(resourceVersion: string, options: WatchOptions, signal: AbortSignal): AsyncIterable<NodeWatchEvent>
  /** PATCH nodes/<name>/status (flannel writes its annotations and condition there). */
  patchNodeStatus(name: string, patch: unknown, type: PatchType, signal: AbortSignal): Promise<KubeNode>
  close(): void
}

/** An error answer of the API server, or a failure to reach it. */
export class KubeApiError extends WeftError {
  /** HTTP status (0 when the server was not reached). */
  readonly status: number
  /** Status.reason (NotFound, Unauthorized, Expired, ...), or the socket error code. */
  readonly reason: string
  /** Seconds from a Retry-After header (429, 503), if any. */
  readonly retryAfterSeconds: number | undefined

  constructor(status: number, reason: string, message: string, options: { retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(codeForStatus(status), message, { details: { status, reason }, ...(options.cause === undefined ? {} : { cause: options.cause }) })
    this.name = 'KubeApiError'
    this.status = status
    this.reason = reason
    this.retryAfterSeconds = options.retryAfterSeconds
  }
}

function codeForStatus(status: number): ErrorCode {
  if (status === 401 || status === 403) return 'REGISTRY_DENIED'
  if (status === 404) return 'REGISTRY_NOT_FOUND'
  if (status === 410) return 'REGISTRY_COMPACTED'
  return 'REGISTRY_UNAVAILABLE'
}
