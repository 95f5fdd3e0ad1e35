/**
 * Authentication (bearer tokens, optionally client certificates) and RBAC-style authorization.
 * The built-in users: an admin in system:masters (may do everything) and flannel's service
 * account with kube-flannel.yml's ClusterRole (pods get; nodes get/list/watch; nodes/status patch).
 */
import { randomBytes } from 'node:crypto'

export interface PolicyRule {
  readonly resources: readonly string[]
  readonly verbs: readonly string[]
  readonly resourceNames?: readonly string[]
}

export interface UserSpec {
  readonly name: string
  readonly groups?: readonly string[]
  /** Rules of the user's ClusterRole; ignored for members of system:masters. */
  readonly rules?: readonly PolicyRule[]
  /** Its bearer token; default: a random one. */
  readonly token?: string
}

export interface User { readonly name: string; readonly groups: readonly string[] }

export const FLANNEL_USER = 'system:serviceaccount:kube-flannel:flannel'
export const ADMIN_USER = 'kubernetes-admin'

/** kube-flannel.yml's ClusterRole "flannel". */
export const FLANNEL_RULES: readonly PolicyRule[] = [
  { resources: ['pods'], verbs: ['get'] },
  { resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  { resources: ['nodes/status'], verbs: ['patch'] },
]

export const newToken = (): string => randomBytes(24).toString('base64url')

export const DEFAULT_USERS = (): UserSpec[] => [
  { name: ADMIN_USER, groups: ['system:masters'] },
  { name: FLANNEL_USER, groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-flannel'], rules: FLANNEL_RULES },
]

interface Account { spec: UserSpec; user: User }

export class Authenticator {
  private readonly byToken = new Map<string, Account>()
  private readonly byName = new Map<string, Account>()

  constructor(users: readonly UserSpec[]) {
    for (const spec of users) this.add(spec)
  }

  add(spec: UserSpec): string {
    const token = spec.token ?? newToken()
    const account: Account = { spec, user: { name: spec.name, groups: [...(spec.groups ?? []), 'system:authenticated'] } }
    const old = this.byName.get(spec.name)
    if (old?.spec.token) this.byToken.delete(old.spec.token)
    const stored = { ...account, spec: { ...spec, token } }
    this.byName.set(spec.name, stored)
    this.byToken.set(token, stored)
    return token
  }

  /** Revokes the user's token and issues a new one (or `token`). */
  rotate(name: string, token = newToken()): string {
    const acc = this.byName.get(name)
    if (!acc) throw new Error(`unknown user ${name}`)
    return this.add({ ...acc.spec, token })
  }

  tokenOf(name: string): string | undefined { return this.byName.get(name)?.spec.token }
  tokens(): Record<string, string> {
    return Object.fromEntries([...this.byName.values()].map((a) => [a.spec.name, a.spec.token!]))
  }

  byBearer(token: string): User | undefined { return this.byToken.get(token)?.user }

  /** A client certificate's user: CN is the name, O the groups; rules come from a user of that name. */
  byCertificate(cn: string, orgs: readonly string[]): User {
    return { name: cn, groups: [...orgs, 'system:authenticated'] }
  }

  /** RBAC: masters may do everything; others by their rules. Non-resource URLs are for everyone authenticated (system:discovery). */
  allowed(user: User, verb: string, resource: string, subresource: string | undefined, name: string | undefined): boolean {
    if (user.groups.includes('system:masters')) return true
    const rules = this.byName.get(user.name)?.spec.rules ?? []
    const res = subresource ? `${resource}/${subresource}` : resource
    return rules.some((r) => (r.resources.includes(res) || r.resources.includes('*')) && (r.verbs.includes(verb) || r.verbs.includes('*')) &&
      (r.resourceNames === undefined || (name !== undefined && r.resourceNames.includes(name))))
  }
}
