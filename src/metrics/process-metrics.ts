/**
 * The standard process_* metrics (Prometheus client conventions), read from the runtime and
 * /proc at scrape time: resident and virtual memory, CPU seconds, start time, open and max fds.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { Counter, Gauge, type Registry } from './exposition.ts'

export function registerProcessMetrics(registry: Registry, startTimeSeconds: number): void {
  const cpu = registry.register(new Counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.'))
  const rss = registry.register(new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes.'))
  const vsize = registry.register(new Gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.'))
  const start = registry.register(new Gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.'))
  const fds = registry.register(new Gauge('process_open_fds', 'Number of open file descriptors.'))
  const maxFds = registry.register(new Gauge('process_max_fds', 'Maximum number of open file descriptors.'))
  const heap = registry.register(new Gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.'))
  start.set([], startTimeSeconds)
  const limit = maxOpenFiles()
  if (limit !== undefined) maxFds.set([], limit)
  registry.onCollect(() => {
    const usage = process.cpuUsage()
    cpu.set([], (usage.user + usage.system) / 1e6)
    const mem = process.memoryUsage()
    rss.set([], mem.rss)
    heap.set([], mem.heapUsed)
    const vm = virtualBytes()
    if (vm !== undefined) vsize.set([], vm)
    const open = openFds()
    if (open !== undefined) fds.set([], open)
  })
}

function openFds(): number | undefined {
  try {
    // The listing itself holds one descriptor on the directory.
    return readdirSync('/proc/self/fd').length - 1
  } catch {
    return undefined
  }
}

function virtualBytes(): number | undefined {
  try {
    const m = /^VmSize:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

function maxOpenFiles(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}
