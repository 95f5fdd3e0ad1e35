/** In-memory ComputeRoutesApi: routes by name, operations that finish after N polls, a call log. */
import type { ComputeRoutesApi, GceOperation, GceOperationStatus, GceRoute, GceSelf, GceSelfLinks } from '../../../../src/backend/gce/compute-routes-api.ts'

const LINK = 'https://www.googleapis.com/compute/v1/projects/p'
export const SELF: GceSelf = { project: 'p', zone: 'z', network: 'default', instance: 'me' }
export const LINKS: GceSelfLinks = { networkSelfLink: `${LINK}/global/networks/default`, instanceSelfLink: `${LINK}/zones/z/instances/me` }

export class MemoryComputeRoutesApi implements ComputeRoutesApi {
  readonly routes = new Map<string, GceRoute>()
  readonly calls: string[] = []
  /** Polls before an operation reports DONE; Infinity = never. */
  pollsToDone = 2
  private seq = 0

  async resolveSelfLinks(): Promise<GceSelfLinks> {
    this.calls.push('resolveSelfLinks')
    return LINKS
  }

  async getRoute(_project: string, name: string): Promise<GceRoute | undefined> {
    this.calls.push(`getRoute ${name}`)
    return this.routes.get(name)
  }

  async listRoutes(): Promise<readonly GceRoute[]> {
    this.calls.push('listRoutes')
    return [...this.routes.values()]
  }

  async insertRoute(_project: string, route: GceRoute): Promise<GceOperation> {
    this.calls.push(`insertRoute ${route.name}`)
    return this.op(() => this.routes.set(route.name, route))
  }

  async deleteRoute(_project: string, name: string): Promise<GceOperation> {
    this.calls.push(`deleteRoute ${name}`)
    return this.op(() => this.routes.delete(name))
  }

  private op(apply: () => void): GceOperation {
    const name = `op-${++this.seq}`
    let polls = 0
    return {
      name,
      poll: async (): Promise<GceOperationStatus> => {
        this.calls.push(`poll ${name}`)
        if (++polls < this.pollsToDone) return { name, status: polls === 1 ? 'PENDING' : 'RUNNING' }
        if (polls === this.pollsToDone) apply()
        return { name, status: 'DONE' }
      },
    }
  }
}
