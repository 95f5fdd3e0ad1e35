/**
 * meta/v1 Status objects exactly as kube-apiserver writes them (apimachinery's errors package):
 * field order kind, apiVersion, metadata, status, message, reason, details, code, and the same
 * message wording, so a client tested here parses the real server's errors too.
 */

export interface StatusCause { reason?: string; message: string; field?: string }

export interface StatusDetails {
  name?: string
  group?: string
  kind?: string
  uid?: string
  causes?: StatusCause[]
  retryAfterSeconds?: number
}

export interface StatusBody {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: { continue?: string }
  status: 'Failure' | 'Success'
  message?: string
  reason?: string
  details?: StatusDetails
  /** Omitted (0) in a success Status. */
  code?: number
}

/** An error answer: the Status to send, plus headers (Retry-After). */
export class ApiError extends Error {
  constructor(readonly body: StatusBody, readonly headers: Record<string, string> = {}) {
    super(body.message ?? body.reason ?? String(body.code))
  }
  get code(): number { return this.body.code ?? 500 }
}

export function failure(code: number, reason: string | undefined, message: string, details?: StatusDetails, metadata: StatusBody['metadata'] = {}): ApiError {
  const body: StatusBody = { kind: 'Status', apiVersion: 'v1', metadata, status: 'Failure', message }
  if (reason !== undefined) body.reason = reason
  if (details !== undefined) body.details = details
  body.code = code
  const headers: Record<string, string> = {}
  if (details?.retryAfterSeconds) headers['Retry-After'] = String(details.retryAfterSeconds)
  return new ApiError(body, headers)
}

/** `nodes`, `pods`: the resource (plural) used in messages and details.kind. */
const named = (resource: string, name: string): string => `${resource} "${name}"`

export const notFound = (resource: string, name: string): ApiError =>
  failure(404, 'NotFound', `${named(resource, name)} not found`, { name, kind: resource })

export const alreadyExists = (resource: string, name: string): ApiError =>
  failure(409, 'AlreadyExists', `${named(resource, name)} already exists`, { name, kind: resource })

export const conflict = (resource: string, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): ApiError =>
  failure(409, 'Conflict', `Operation cannot be fulfilled on ${named(resource, name)}: ${why}`, { name, kind: resource })

export const unauthorized = (): ApiError => failure(401, 'Unauthorized', 'Unauthorized')

export const badRequest = (message: string): ApiError => failure(400, 'BadRequest', message)

/** NewResourceExpired: 410 with reason Expired (too old resourceVersion, expired continue token). */
export const expired = (message: string, metadata: StatusBody['metadata'] = {}): ApiError => failure(410, 'Expired', message, undefined, metadata)

export const internalError = (message: string): ApiError =>
  failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] })

export const serviceUnavailable = (message: string): ApiError => failure(503, 'ServiceUnavailable', message)

export const tooManyRequests = (retryAfterSeconds: number, message = 'Too many requests, please try again later.'): ApiError =>
  failure(429, 'TooManyRequests', message, { retryAfterSeconds })

/** NewGenericServerResponse(422, ...) as the patch handler answers a failing JSON patch op. */
export const unprocessable = (): ApiError => failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {})

export const serverNotFound = (): ApiError => failure(404, 'NotFound', 'the server could not find the requested resource', {})

export const methodNotAllowed = (): ApiError => failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {})

export const notAcceptable = (accepted: string[]): ApiError =>
  failure(406, 'NotAcceptable', `only the following media types are accepted: ${accepted.join(', ')}`)

export const unsupportedMediaType = (accepted: string[]): ApiError =>
  failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`)

export const tooLargeResourceVersion = (requested: number, current: number): ApiError =>
  failure(504, 'Timeout', `Too large resource version: ${requested}, current: ${current}`,
    { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 })

/** The RBAC/authorizer form: `nodes "x" is forbidden: User "u" cannot patch resource "nodes" in API group "" at the cluster scope`. */
export function forbidden(a: { user: string; verb: string; resource: string; subresource?: string; name?: string; namespace?: string }): ApiError {
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope'
  const why = `User "${a.user}" cannot ${a.verb} resource "${res}" in API group "" ${scope}`
  const subject = a.name ? named(a.resource, a.name) : a.resource
  const details: StatusDetails = a.name ? { name: a.name, kind: a.resource } : { kind: a.resource }
  return failure(403, 'Forbidden', `${subject} is forbidden: ${why}`, details)
}

/** For a non-resource URL (`/metrics`): `forbidden: User "u" cannot get path "/metrics"`. */
export const forbiddenPath = (user: string, verb: string, path: string): ApiError =>
  failure(403, 'Forbidden', `forbidden: User "${user}" cannot ${verb} path "${path}"`, {})

/** One field.Error: its type string and cause reason as apimachinery's field package has them. */
export type FieldErrorType = 'Invalid' | 'Forbidden' | 'Required' | 'NotSupported' | 'Duplicate' | 'TooLong'
const TYPE_TEXT: Record<FieldErrorType, [string, string]> = {
  Invalid: ['Invalid value', 'FieldValueInvalid'],
  Forbidden: ['Forbidden', 'FieldValueForbidden'],
  Required: ['Required value', 'FieldValueRequired'],
  NotSupported: ['Unsupported value', 'FieldValueNotSupported'],
  Duplicate: ['Duplicate value', 'FieldValueDuplicate'],
  TooLong: ['Too long', 'FieldValueTooLong'],
}

export interface FieldError { type: FieldErrorType; field: string; value?: unknown; detail?: string }

/** Go's %#v / %q rendering of a bad value, as field.Error.ErrorBody prints it. */
function goValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (v === null || v === undefined) return 'null'
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return `[]string{${v.map((x) => JSON.stringify(x)).join(', ')}}`
  return JSON.stringify(v)
}

function errorBody(e: FieldError): string {
  const [text] = TYPE_TEXT[e.type]
  let s = e.type === 'Required' || e.type === 'Forbidden' || e.type === 'TooLong' ? text : `${text}: ${goValue(e.value)}`
  if (e.detail) s += `: ${e.detail}`
  return s
}

/** NewInvalid: 422, `Node "x" is invalid: spec.podCIDRs: Forbidden: ...`, details.causes per field error. */
export function invalid(kind: string, name: string, errs: FieldError[], group = ''): ApiError {
  const causes = errs.map((e) => ({ reason: TYPE_TEXT[e.type][1], message: errorBody(e), field: e.field }))
  const each = errs.map((e) => `${e.field}: ${errorBody(e)}`)
  const agg = each.length === 1 ? each[0] : `[${each.join(', ')}]`
  const qualified = group ? `${kind}.${group}` : kind
  const details: StatusDetails = {}
  if (name) details.name = name
  if (group) details.group = group
  details.kind = kind
  details.causes = causes
  return failure(422, 'Invalid', `${qualified} "${name}" is invalid: ${agg}`, details)
}

/** A success Status (DELETE of a resource that does not return the deleted object). */
export function success(details: StatusDetails): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details }
}
