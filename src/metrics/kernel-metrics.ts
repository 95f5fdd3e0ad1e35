/**
 * Counts kernel operations by wrapping the Kernel interface, so the netlink layer itself needs no
 * edit and, with metrics off, no wrapper exists at all. Each call is forwarded synchronously, so
 * LinuxKernel still batches the requests of one tick.
 */
import type { Kernel } from '../kernel/kernel.ts'
import type { KernelRecorder } from './recorder.ts'

/** Method → [object, op]; reads (get, list) are counted too, the notifications are not. */
const OPS: Readonly<Record<string, readonly [string, string]>> = {
  getLink: ['link', 'get'], getLinkByIndex: ['link', 'get'], listLinks: ['link', 'list'],
  createVxlan: ['link', 'create'], openTun: ['tun', 'open'], setLink: ['link', 'set'], deleteLink: ['link', 'delete'],
  replaceAddr: ['addr', 'replace'], deleteAddr: ['addr', 'delete'], listAddrs: ['addr', 'list'],
  replaceRoute: ['route', 'replace'], deleteRoute: ['route', 'delete'], listRoutes: ['route', 'list'], routeGet: ['route', 'get'],
  replaceNeigh: ['neigh', 'replace'], deleteNeigh: ['neigh', 'delete'], listNeighs: ['neigh', 'list'],
  replaceFdb: ['fdb', 'replace'], appendFdb: ['fdb', 'append'], deleteFdb: ['fdb', 'delete'], listFdb: ['fdb', 'list'],
  setSysctl: ['sysctl', 'set'], getSysctl: ['sysctl', 'get'],
}

export function instrumentKernel(kernel: Kernel, metrics: KernelRecorder): Kernel {
  const wrapped: Record<string, unknown> = {
    subscribe: kernel.subscribe.bind(kernel),
    close: kernel.close.bind(kernel),
  }
  for (const [method, [object, op]] of Object.entries(OPS)) {
    const fn = (kernel as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[method]
    if (typeof fn !== 'function') continue
    wrapped[method] = (...args: unknown[]): Promise<unknown> =>
      fn.apply(kernel, args).then(
        (value) => { metrics.kernelOp(object, op, 'ok'); return value },
        (err: unknown) => { metrics.kernelOp(object, op, 'error'); throw err },
      )
  }
  return wrapped as unknown as Kernel
}
