/**
 * The few Kubernetes API shapes weft reads (core/v1 Node and Pod, lists, watch events, Status).
 * Only the fields weft uses are typed; the client keeps nothing else of the objects it decodes,
 * so 5,000 watched nodes cost their annotations, not their whole status.
 */

export interface ObjectMeta {
  readonly name: string
  readonly namespace?: string
  readonly uid?: string
  readonly resourceVersion?: string
  readonly annotations?: Readonly<Record<string, string>>
}

export interface NodeCondition {
  readonly type: string
  readonly status: string
  readonly reason?: string
  readonly message?: string
  readonly lastHeartbeatTime?: string
  readonly lastTransitionTime?: string
}

/** core/v1 Node, reduced to what weft reads. */
export interface KubeNode {
  readonly metadata: ObjectMeta
  readonly spec: { readonly podCIDR?: string; readonly podCIDRs?: readonly string[] }
  readonly status?: { readonly conditions?: readonly NodeCondition[] }
}

/** core/v1 Pod, reduced to what weft reads (node discovery from POD_NAME/POD_NAMESPACE). */
export interface KubePod {
  readonly metadata: ObjectMeta
  readonly spec: { readonly nodeName?: string }
}

export interface NodeList {
  /** The list's resourceVersion: watch from here. */
  readonly resourceVersion: string
  /** Continue token when the list was paged (limit) and more items remain. */
  readonly continue?: string
  readonly items: readonly KubeNode[]
}

/** One event of a watch stream. ERROR events never reach callers: the client throws them. */
export type NodeWatchEvent =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly object: KubeNode }
  /** A bookmark carries only metadata.resourceVersion. */
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }

/** meta/v1 Status, as the API server sends it with an error (and inside watch ERROR events). */
export interface KubeStatus {
  readonly kind: 'Status'
  readonly apiVersion: 'v1'
  readonly status: 'Failure' | 'Success'
  readonly message?: string
  /** e.g. NotFound, Unauthorized, Forbidden, Conflict, Expired, Gone, TooManyRequests, InternalError */
  readonly reason?: string
  readonly code?: number
  readonly details?: Readonly<Record<string, unknown>>
}

export type PatchType = 'strategic' | 'merge'

export const PATCH_CONTENT_TYPE: Readonly<Record<PatchType, string>> = {
  strategic: 'application/strategic-merge-patch+json',
  merge: 'application/merge-patch+json',
}
