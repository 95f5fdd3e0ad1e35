/** Every check, in report order; each is a pure function of the gathered facts. */
import type { DoctorFacts } from '../facts.ts'
import type { Finding } from '../finding.ts'
import { checkMtu, checkOwnDevice, checkSubnetEnv, checkVtepMac } from './local-state.ts'
import { checkBrNetfilter, checkChecksumOffload, checkIpForward } from './host-config.ts'
import { checkForwardDrop, checkIptablesBackends } from './firewall.ts'
import { checkDuplicatePublicIp, checkLeaseExpiry, checkPodCidr } from './store.ts'
import { checkInterface, checkOverlay, checkPeerKernelState } from './peers.ts'

export const CHECKS: ReadonlyArray<(facts: DoctorFacts) => Finding[]> = [
  checkOverlay, checkMtu, checkSubnetEnv, checkVtepMac, checkDuplicatePublicIp, checkInterface,
  checkIpForward, checkBrNetfilter, checkForwardDrop, checkChecksumOffload, checkIptablesBackends,
  checkLeaseExpiry, checkPodCidr, checkOwnDevice, checkPeerKernelState,
]

export function runChecks(facts: DoctorFacts): Finding[] {
  return CHECKS.flatMap((check) => check(facts))
}
