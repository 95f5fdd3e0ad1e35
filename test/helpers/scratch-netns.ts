/**
 * A throwaway, uniquely named network namespace for privileged tests: created empty (only a
 * down `lo`, no route out of the machine) and always deleted, also when the process exits early.
 */
import { execFileSync } from 'node:child_process'

let counter = 0
const live = new Set<string>()
let hooked = false

function cleanupAll(): void {
  for (const name of live) {
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
    } catch {
      // already gone
    }
  }
  live.clear()
}

export interface ScratchNetns {
  readonly name: string
  /** Runs a command inside the namespace and returns stdout. */
  exec(cmd: string, args: readonly string[]): string
  /** `ip -json ...` inside the namespace, parsed. */
  ipJson<T = unknown>(args: readonly string[]): T
  destroy(): void
}

/** Skip reason for tests that need root, or false. */
export const needsRoot = (): string | false => (process.getuid?.() === 0 ? false : 'needs root (network namespaces, netlink writes)')

export function createScratchNetns(tag = 'k'): ScratchNetns {
  if (!hooked) {
    hooked = true
    process.once('exit', cleanupAll)
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { cleanupAll(); process.exit(130) })
  }
  const name = `wt${process.pid.toString(36)}${tag}${(counter++).toString(36)}`
  execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' })
  live.add(name)
  // No duplicate address detection: a tentative IPv6 address drops the first packets for 1-2 s,
  // longer on a loaded machine, which made IPv6 data-path tests flaky.
  execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'], { stdio: 'ignore' })
  const exec = (cmd: string, args: readonly string[]): string =>
    execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  return {
    name,
    exec,
    ipJson: <T>(args: readonly string[]): T => {
      const out = exec('ip', ['-json', ...args]).trim()
      return (out === '' ? [] : JSON.parse(out)) as T
    },
    destroy: () => {
      if (!live.delete(name)) return
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
    },
  }
}
