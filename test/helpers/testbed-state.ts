/**
 * What one testbed owns (namespaces, processes, work dir) and its two cleanups: the async
 * `destroy()` (graceful stop) and `destroySync()`, which also runs on process exit and on
 * SIGINT/SIGTERM so a failing test or Ctrl-C never leaves namespaces behind.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EtcdServer } from './etcd-server.ts'
import type { KubeApiServer } from './kube-apiserver.ts'
import { addNetns, delNetnsSync, netnsPidsSync, nsSpawn, type NsProcess, type SpawnOptions } from './netns.ts'

/** Everything one testbed owns, so both the async and the exit-time cleanup can remove it. */
export class BedState {
  readonly netns: string[] = []
  readonly procs = new Set<NsProcess>()
  readonly workDir: string
  etcd: EtcdServer | undefined
  kubeApi: KubeApiServer | undefined
  private destroyed: Promise<void> | undefined

  constructor(readonly prefix: string) {
    this.workDir = join(tmpdir(), `weft-${prefix}`)
    mkdirSync(this.workDir, { recursive: true })
    alive.add(this)
    hookExit()
  }

  async addNs(name: string): Promise<string> {
    if (this.destroyed) throw new Error(`testbed ${this.prefix} is destroyed`)
    if (this.netns.includes(name)) throw new Error(`namespace already exists in testbed: ${name}`)
    // Recorded before creation so a half-created namespace is still removed.
    this.netns.push(name)
    await addNetns(name)
    return name
  }

  spawn(netns: string, argv: readonly string[], opts?: SpawnOptions): NsProcess {
    if (this.destroyed) throw new Error(`testbed ${this.prefix} is destroyed`)
    const p = nsSpawn(netns, argv, opts)
    this.procs.add(p)
    void p.exited.then(() => this.procs.delete(p))
    return p
  }

  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      await Promise.all([...this.procs].map((p) => p.stop(2000)))
      await this.etcd?.destroy().catch(() => undefined)
      await this.kubeApi?.close().catch(() => undefined)
      this.destroySync()
    })()
    return this.destroyed
  }

  /** Kills by PID what is left (tracked processes, then anything still inside our namespaces), deletes namespaces and files. */
  destroySync(): void {
    for (const p of this.procs) {
      try { process.kill(p.pid, 'SIGKILL') } catch { /* already gone */ }
    }
    this.procs.clear()
    // Only processes inside namespaces this testbed created (e.g. children of weftd) are killed here.
    for (const ns of this.netns) {
      for (const pid of netnsPidsSync(ns)) {
        try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
      }
    }
    // Pod namespaces first, then hosts and the switch, so veth peers go away with their owners.
    for (const ns of [...this.netns].reverse()) delNetnsSync(ns)
    this.netns.length = 0
    rmSync(this.workDir, { recursive: true, force: true })
    alive.delete(this)
  }
}

const alive = new Set<BedState>()
let hooked = false

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const s of [...alive]) s.destroySync()
  })
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      for (const s of [...alive]) s.destroySync()
      process.exit(code)
    })
  }
}
