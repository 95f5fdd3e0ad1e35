/**
 * Runs an external command (iptables, nft, CNI plugins) and collects its output. Injected so
 * privileged tests can run every command inside a throwaway network namespace.
 */
import { spawn } from 'node:child_process'

export interface CommandResult {
  /** Exit code; 127 when the binary is missing, -1 when killed by a signal. */
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export type CommandRunner = (file: string, args: readonly string[], input?: string) => Promise<CommandResult>

/** Spawns the command directly (no shell), feeding `input` on stdin. */
export const execRunner: CommandRunner = (file, args, input) =>
  new Promise((resolve) => {
    let stdout = ''
    let stderr = ''
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', (err: NodeJS.ErrnoException) => {
      resolve({ code: err.code === 'ENOENT' ? 127 : -1, stdout, stderr: stderr + err.message })
    })
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.on('error', () => {}) // the child may exit before reading stdin
    child.stdin.end(input ?? '')
  })

/** A runner whose commands execute inside the named network namespace (`ip netns exec`). */
export function netnsRunner(netns: string, base: CommandRunner = execRunner): CommandRunner {
  return (file, args, input) => base('ip', ['netns', 'exec', netns, file, ...args], input)
}
