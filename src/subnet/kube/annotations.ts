/**
 * flannel's node annotation names under `--kube-annotation-prefix` (pkg/subnet/kube/annotations.go).
 * The prefix is normalised as flannel does it: no `/` → one appended; not ending in `/` or `-`
 * → `-` appended (`org.com/9` → `org.com/9-backend-type`). flannel's pattern is not anchored at
 * its start, so it accepts `Foo.example.com` (Kubernetes then rejects the key); weft anchors it
 * and refuses such a prefix at start-up instead.
 */
import { ConfigError } from '../../errors.ts'

export interface AnnotationNames {
  readonly kubeSubnetManager: string
  readonly backendType: string
  readonly backendData: string
  readonly backendV6Data: string
  readonly publicIp: string
  readonly publicIpv6: string
  /** Inputs an operator sets: the address this node advertises instead of its own. */
  readonly publicIpOverwrite: string
  readonly publicIpv6Overwrite: string
  /** Inputs an operator sets: this node's own public address (overrides --public-ip). */
  readonly nodePublicIp: string
  readonly nodePublicIpv6: string
}

export const DEFAULT_ANNOTATION_PREFIX = 'flannel.alpha.coreos.com'

const PREFIX_PATTERN = /^(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/

/** Normalises `--kube-annotation-prefix`; throws ConfigError naming the flag and the rule. */
export function normalizeAnnotationPrefix(prefix: string): string {
  const slashes = prefix.split('/').length - 1
  if (slashes > 1) throw new ConfigError('--kube-annotation-prefix', `"${prefix}": prefix can contain at most single slash`, { code: 'USAGE' })
  let out = slashes === 0 ? `${prefix}/` : prefix
  if (!out.endsWith('/') && !out.endsWith('-')) out += '-'
  if (!PREFIX_PATTERN.test(out)) {
    throw new ConfigError('--kube-annotation-prefix', `"${prefix}": prefix must be in a format: fqdn/[0-9a-z-_]* (lower case)`, { code: 'USAGE' })
  }
  return out
}

export function annotationNames(prefix: string): AnnotationNames {
  const p = normalizeAnnotationPrefix(prefix)
  return {
    kubeSubnetManager: `${p}kube-subnet-manager`,
    backendType: `${p}backend-type`,
    backendData: `${p}backend-data`,
    backendV6Data: `${p}backend-v6-data`,
    publicIp: `${p}public-ip`,
    publicIpv6: `${p}public-ipv6`,
    publicIpOverwrite: `${p}public-ip-overwrite`,
    publicIpv6Overwrite: `${p}public-ipv6-overwrite`,
    nodePublicIp: `${p}node-public-ip`,
    nodePublicIpv6: `${p}node-public-ipv6`,
  }
}
