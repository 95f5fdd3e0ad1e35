/**
 * The slice of the Compute Engine API the gce backend needs, as plain data. The SDK-backed
 * implementation (gce-compute-routes-api.ts) is the only module that talks to Google; tests
 * give the backend a real SDK pointed at a local emulator, or an in-memory fake.
 */

/** Where this host lives, read from the metadata server. */
export interface GceSelf {
  readonly project: string
  readonly zone: string
  /** Network name (basename of the metadata value). */
  readonly network: string
  /** Instance name. */
  readonly instance: string
}

/** The self links the route must reference (resolved with networks.get / instances.get). */
export interface GceSelfLinks {
  readonly networkSelfLink: string
  readonly instanceSelfLink: string
}

/** A route as the Compute API returns it (only the fields weft reads). */
export interface GceRoute {
  readonly name: string
  readonly destRange: string
  /** Network self link. */
  readonly network: string
  /** Instance self link; '' when the route has another kind of next hop. */
  readonly nextHopInstance: string
  readonly priority: number
}

/** Status of a global operation: PENDING → RUNNING → DONE (DONE may carry an error). */
export interface GceOperationStatus {
  readonly name: string
  readonly status: 'PENDING' | 'RUNNING' | 'DONE'
  /** Set when a DONE operation failed: the first error's code and message. */
  readonly error?: { readonly code: string; readonly message: string }
}

/** A started route mutation; poll until its status is DONE. */
export interface GceOperation {
  readonly name: string
  poll(signal: AbortSignal): Promise<GceOperationStatus>
}

/** Compute routes API, five calls. Every failure is a CloudError naming the call and resource. */
export interface ComputeRoutesApi {
  /** networks.get + instances.get: the self links of this host's network and instance. */
  resolveSelfLinks(self: GceSelf, signal: AbortSignal): Promise<GceSelfLinks>
  /** routes.get; undefined when the route does not exist (404). */
  getRoute(project: string, name: string, signal: AbortSignal): Promise<GceRoute | undefined>
  /** routes.list, all pages: every route in the project (the quota counts them all). */
  listRoutes(project: string, signal: AbortSignal): Promise<readonly GceRoute[]>
  /** routes.insert; returns the global operation to wait for. */
  insertRoute(project: string, route: GceRoute, signal: AbortSignal): Promise<GceOperation>
  /** routes.delete; returns the global operation to wait for. */
  deleteRoute(project: string, name: string, signal: AbortSignal): Promise<GceOperation>
}
