/**
 * The NetworkUnavailable node condition flanneld sets once it runs (CompleteLease), so alerts
 * and schedulers that watch it keep working when weft takes over a node.
 */
import type { NodeCondition } from './kube-types.ts'

export const CONDITION_TYPE = 'NetworkUnavailable'
export const CONDITION_REASON = 'FlannelIsUp'
export const CONDITION_MESSAGE = 'Flannel is running on this node'

/** metav1.Time marshals as RFC 3339 in whole seconds. */
export function kubeTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** The condition to patch; the transition time is kept when the status does not change. */
export function networkUnavailableCondition(now: Date, current: NodeCondition | undefined): NodeCondition {
  const stamp = kubeTime(now)
  return {
    type: CONDITION_TYPE,
    status: 'False',
    reason: CONDITION_REASON,
    message: CONDITION_MESSAGE,
    lastTransitionTime: current?.status === 'False' && current.lastTransitionTime ? current.lastTransitionTime : stamp,
    lastHeartbeatTime: stamp,
  }
}

/** Already what flanneld would set: no patch needed. */
export function conditionIsCurrent(current: NodeCondition): boolean {
  return current.status === 'False' && current.reason === CONDITION_REASON && current.message === CONDITION_MESSAGE
}
