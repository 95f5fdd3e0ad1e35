import { WeftError } from '../errors.ts'

/** A failed kernel operation: `errno` is the symbolic name ('EEXIST', 'ENOENT', 'EPERM', ...). */
export class KernelError extends WeftError {
  readonly errno: string
  readonly op: string
  readonly object: string

  constructor(op: string, object: string, errno: string, options: { cause?: unknown } = {}) {
    super('KERNEL_OP_FAILED', `${op} ${object}: ${errno}`, { details: { op, object, errno }, ...options })
    this.name = 'KernelError'
    this.errno = errno
    this.op = op
    this.object = object
  }
}

export function isKernelErrno(err: unknown, ...errnos: string[]): boolean {
  return err instanceof KernelError && errnos.includes(err.errno)
}

/** Errnos Linux answers for "no such object" (link, route, address, neighbour/FDB). */
const NOT_FOUND = ['ENODEV', 'ESRCH', 'EADDRNOTAVAIL', 'ENOENT']

/** True when a delete failed because the object was already gone: treat as success. */
export function isKernelNotFound(err: unknown): boolean {
  return isKernelErrno(err, ...NOT_FOUND)
}
