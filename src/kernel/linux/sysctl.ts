/**
 * /proc/sys access, synchronous on purpose: /proc/sys/net reflects the namespace of the thread
 * that opens it, so with a `netns` option it must run on the setns'd main thread.
 */
import { readFileSync, writeFileSync } from 'node:fs'

/** Paths are relative to /proc/sys and may not climb out of it. */
export function sysctlPath(path: string): string {
  if (path === '' || path.startsWith('/') || path.split('/').some((p) => p === '..' || p === '')) {
    throw new RangeError(`invalid sysctl path: ${path}`)
  }
  return `/proc/sys/${path}`
}

export function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(sysctlPath(path), 'utf8').replace(/\n$/, '')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

export function writeSysctl(path: string, value: string): void {
  writeFileSync(sysctlPath(path), value)
}
