/** Finding and running a delegate CNI plugin (bridge, host-local) from CNI_PATH. */
import { spawn } from 'node:child_process'
import { access, constants } from 'node:fs/promises'
import { join } from 'node:path'

export interface PluginResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a plugin binary with the given environment, feeding `stdin`. */
export type PluginExec = (path: string, env: Readonly<Record<string, string>>, stdin: string) => Promise<PluginResult>

export const spawnPlugin: PluginExec = (path, env, stdin) =>
  new Promise((resolve) => {
    let stdout = ''
    let stderr = ''
    const child = spawn(path, [], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', (err) => resolve({ code: 127, stdout, stderr: stderr + err.message }))
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.on('error', () => {})
    child.stdin.end(stdin)
  })

/** First executable named `type` in the CNI_PATH directories; undefined when none. */
export async function findPlugin(type: string, cniPath: string): Promise<string | undefined> {
  if (type === '' || type.includes('/')) return undefined
  for (const dir of cniPath.split(':').filter((d) => d !== '')) {
    const candidate = join(dir, type)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this directory
    }
  }
  return undefined
}
