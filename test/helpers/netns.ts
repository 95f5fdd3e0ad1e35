/**
 * Promise wrappers around `ip` and `ip netns exec` for the privileged and e2e tiers.
 *
 * Every command runs with a timeout and captured output; failures throw {@link CommandError}
 * naming the command, exit code and stderr. Long-running processes are spawned through
 * `setpriv --pdeathsig KILL` so they die with the test process even if it is SIGKILLed, and
 * `ip netns exec` / `setpriv` both exec in place, so the returned PID is the process itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'

/** Output of a finished command. */
export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Kill the command (SIGKILL) after this many ms; default 10 000. */
  timeoutMs?: number
  /** Written to stdin, then stdin is closed. */
  input?: string
  /** Extra environment variables (merged over process.env; undefined removes one). */
  env?: Record<string, string | undefined>
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean
}

/** A command that exited non-zero, was killed, or timed out. */
export class CommandError extends Error {
  override name = 'CommandError'
  constructor(
    readonly command: readonly string[],
    readonly result: RunResult,
    readonly timedOut: boolean,
  ) {
    const how = timedOut ? 'timed out' : result.signal ? `killed by ${result.signal}` : `exit code ${result.code}`
    const err = result.stderr.trim().slice(-2000)
    super(`command failed (${how}): ${command.join(' ')}${err ? `: ${err}` : ''}`)
  }
}

/** Runs `cmd args...`, captures output, and throws {@link CommandError} on failure unless `allowFailure`. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args]
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, opts.timeoutMs ?? 10_000)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`cannot run ${command.join(' ')}: ${err.message}`, { cause: err }))
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      const result: RunResult = { code, signal, stdout, stderr }
      if ((code === 0 && !timedOut) || (opts.allowFailure && !timedOut)) resolve(result)
      else reject(new CommandError(command, result, timedOut))
    })
    child.stdin.on('error', () => { /* the command may exit before reading stdin */ })
    child.stdin.end(opts.input ?? '')
  })
}

/** Runs `ip args...` and returns its stdout. */
export async function ip(...args: string[]): Promise<string> {
  return (await run('ip', args)).stdout
}

/** Runs a command inside network namespace `netns`. */
export function nsExec(netns: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (argv.length === 0) throw new Error('nsExec: empty command')
  return run('ip', ['netns', 'exec', netns, ...argv], opts)
}

/** Creates a network namespace with its loopback up and IPv6 duplicate address detection off. */
export async function addNetns(name: string): Promise<void> {
  await ip('netns', 'add', name)
  await ip('-n', name, 'link', 'set', 'lo', 'up')
  // Without DAD, addresses (link-local included) are usable at once: no 1-2 s stall before the first IPv6 packet.
  await nsExec(name, ['sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'], { allowFailure: true })
}

/** Names of all network namespaces (`ip netns list`). */
export async function listNetns(): Promise<string[]> {
  const out = await ip('netns', 'list')
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '')
}

/** PIDs of processes whose network namespace is `netns` (empty when it does not exist). */
export function netnsPidsSync(netns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8', timeout: 5000 })
  if (r.status !== 0) return []
  return r.stdout.split('\n').map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0)
}

/** Deletes a namespace, ignoring "does not exist". Synchronous so exit handlers can use it. */
export function delNetnsSync(name: string): void {
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 5000 })
}

export interface SpawnOptions {
  /** Extra environment variables (merged over process.env; undefined removes one). */
  env?: Record<string, string | undefined>
  /** Called with each complete line of stdout and stderr. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
  /** How many bytes of combined output to keep for {@link NsProcess.output}; default 64 KiB. */
  keepBytes?: number
}

/** A long-running process started in a namespace. */
export interface NsProcess {
  readonly pid: number
  readonly netns: string
  readonly command: readonly string[]
  /** Settles when the process exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** True once the process has exited. */
  isRunning(): boolean
  /** The tail of combined stdout+stderr. */
  output(): string
  /** SIGTERM exactly this PID, SIGKILL after `graceMs` (default 3000), and wait for exit. */
  stop(graceMs?: number): Promise<void>
}

/** Spawns `argv` inside `netns` (netns '' = the current namespace), dying with this process. */
export function nsSpawn(netns: string, argv: readonly string[], opts: SpawnOptions = {}): NsProcess {
  if (argv.length === 0) throw new Error('nsSpawn: empty command')
  const wrapped = ['setpriv', '--pdeathsig', 'KILL', ...argv]
  const full = netns ? ['ip', 'netns', 'exec', netns, ...wrapped] : wrapped
  const child: ChildProcess = spawn(full[0]!, full.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
  })
  const keep = opts.keepBytes ?? 65_536
  let out = ''
  const partial = { stdout: '', stderr: '' }
  const feed = (stream: 'stdout' | 'stderr') => (c: Buffer): void => {
    const text = c.toString()
    out = (out + text).slice(-keep)
    if (!opts.onLine) return
    const lines = (partial[stream] + text).split('\n')
    partial[stream] = lines.pop() ?? ''
    for (const l of lines) opts.onLine(l, stream)
  }
  child.stdout?.on('data', feed('stdout'))
  child.stderr?.on('data', feed('stderr'))
  let running = true
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false
      live.delete(pid)
      resolve({ code, signal })
    })
    child.once('error', (err) => {
      running = false
      out += `\nspawn error: ${err.message}`
      resolve({ code: null, signal: null })
    })
  })
  if (child.pid === undefined) throw new Error(`cannot spawn ${full.join(' ')}`)
  const pid = child.pid
  live.add(pid)
  hookExit()
  return {
    pid,
    netns,
    command: argv,
    exited,
    isRunning: () => running,
    output: () => out,
    stop: async (graceMs = 3000) => {
      if (!running) return
      try { process.kill(pid, 'SIGTERM') } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try { if (running) process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
      }, graceMs)
      await exited
      clearTimeout(timer)
    },
  }
}

// PIDs spawned here and still running; killed by PID if the test process exits first.
const live = new Set<number>()
let hooked = false

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const pid of live) {
      try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
  })
}

/** Outcome of {@link pingUntil}. */
export interface PingOutcome {
  ok: boolean
  /** Number of single pings sent. */
  attempts: number
  /** Round-trip time of the answered ping, in ms. */
  rttMs?: number
  /** Output of the last ping. */
  lastOutput: string
}

/**
 * Pings `addr` from namespace `netns` once per `intervalMs` until it answers or `timeoutMs`
 * passes (routes and neighbours may still be converging). Never throws on unreachability.
 */
export async function pingUntil(netns: string, addr: string, opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<PingOutcome> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  let attempts = 0
  for (;;) {
    attempts++
    const r = await nsExec(netns, ['ping', '-n', '-c1', '-W1', addr], { allowFailure: true, timeoutMs: 5000 })
    if (r.code === 0) {
      const rtt = parsePingRtt(r.stdout)
      return { ok: true, attempts, lastOutput: r.stdout, ...(rtt !== undefined ? { rttMs: rtt } : {}) }
    }
    if (Date.now() >= deadline) return { ok: false, attempts, lastOutput: r.stdout + r.stderr }
    await new Promise((res) => setTimeout(res, opts.intervalMs ?? 300))
  }
}

/** Extracts the round-trip time from ping output (`time=0.213 ms`), in ms. */
export function parsePingRtt(stdout: string): number | undefined {
  const m = /time[=<]([\d.]+) ?ms/.exec(stdout)
  return m ? Number(m[1]) : undefined
}
