/** What this machine's kernel supports, probed in a throwaway network namespace (needs root). */
import { spawnSync } from 'node:child_process'

/** Whether `ip link add type ipip` works (CONFIG_NET_IPIP). */
export function kernelHasIpip(): boolean {
  const ns = `weftprobe${process.pid}`
  if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) return false
  try {
    return spawnSync('ip', ['-n', ns, 'link', 'add', 'probe0', 'type', 'ipip', 'local', '10.0.0.1']).status === 0
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
  }
}
