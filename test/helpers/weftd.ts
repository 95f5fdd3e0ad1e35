/** Starts the built weftd (dist/, via bin/weftd) inside a testbed host with flanneld-style flags. */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Testbed, TestHost } from './testbed.ts'
import type { NsProcess } from './netns.ts'
import { statSync } from 'node:fs'
import { waitForSubnetEnv } from './pods.ts'

export const REPO = fileURLToPath(new URL('../..', import.meta.url))
export const WEFTD = join(REPO, 'bin', 'weftd')
export const WEFT = join(REPO, 'bin', 'weft')

export interface WeftdRun {
  readonly proc: NsProcess
  readonly subnetFile: string
  readonly host: TestHost
}

/** Default flags: this host's eth0, a per-host subnet file, no FORWARD rules unless asked. */
export function startWeftd(bed: Testbed, host: TestHost, extra: readonly string[] = [], opts: { subnetFile?: string } = {}): WeftdRun {
  const subnetFile = opts.subnetFile ?? join(bed.workDir, `${host.name}-subnet.env`)
  const proc = host.spawn([process.execPath, WEFTD, `--etcd-endpoints=${bed.etcdEndpoint}`, '--iface=eth0', `--subnet-file=${subnetFile}`, '--log-format=human', ...extra])
  return { proc, subnetFile, host }
}

export async function startWeftdReady(bed: Testbed, host: TestHost, extra: readonly string[] = [], opts: { subnetFile?: string; timeoutMs?: number } = {}): Promise<WeftdRun & { env: Record<string, string> }> {
  const subnetFile = opts.subnetFile ?? join(bed.workDir, `${host.name}-subnet.env`)
  // A restart finds the previous run's file: wait for a new one (weftd renames a fresh inode in).
  const before = inode(subnetFile)
  const run = startWeftd(bed, host, extra, { subnetFile })
  try {
    await eventually(`a new ${subnetFile}`, async () => {
      if (!run.proc.isRunning()) throw new Error('weftd exited before writing its subnet file')
      const now = inode(subnetFile)
      return now !== undefined && now !== before
    }, opts.timeoutMs ?? 20_000)
    const env = await waitForSubnetEnv(host, run.subnetFile, { timeoutMs: 1000 })
    return { ...run, env }
  } catch (err) {
    throw new Error(`${(err as Error).message}\nweftd output:\n${run.proc.output()}`, { cause: err })
  }
}

/** Resolves when `cond` holds, polling every `everyMs`; throws with `what` after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 5000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

function inode(path: string): number | undefined {
  try {
    return statSync(path).ino
  } catch {
    return undefined
  }
}
