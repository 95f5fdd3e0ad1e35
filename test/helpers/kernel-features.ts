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

/** Whether the kernel takes an ESP state (CONFIG_INET_ESP), tried with cbc(aes) + hmac(sha256). */
export function kernelHasEsp(): boolean {
  const ns = `weftesp${process.pid}`
  if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) return false
  try {
    const key = (n: number): string => `0x${'ab'.repeat(n)}`
    return spawnSync('ip', ['-n', ns, 'xfrm', 'state', 'add', 'src', '10.0.0.1', 'dst', '10.0.0.2', 'proto', 'esp', 'spi', '0x100', 'mode', 'tunnel',
      'enc', 'cbc(aes)', key(16), 'auth-trunc', 'hmac(sha256)', key(32), '128']).status === 0
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
  }
}
