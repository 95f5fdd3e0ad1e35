/**
 * Running an extension command as flannel does (pkg/backend/extension/extension.go runCmd): the
 * command line is split on whitespace (Go's strings.Fields), `$VAR` / `${VAR}` in every field
 * are expanded (Go's os.Expand) from the process environment plus the backend's variables, and
 * the program is exec'd directly, never through a shell. stdin is the given text plus "\n".
 *
 * Differences from flannel, on purpose: stdout and stderr are kept apart (flannel mixes them,
 * so a warning on stderr ends up in BackendData); every command has a time limit (flannel waits
 * forever, stalling the whole lease watch); an abort (shutdown) terminates a running command.
 */
import { spawn } from 'node:child_process'

const SPECIAL = new Set(['*', '#', '$', '@', '!', '?', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
const isAlnum = (c: string): boolean => /^[A-Za-z0-9_]$/.test(c)

/** Go's os.Expand: `$name`, `${name}`, the one-character shell specials; bad syntax is eaten, a lone `$` kept. */
export function expandVars(text: string, lookup: (name: string) => string): string {
  let out = ''
  let i = 0
  for (let j = 0; j < text.length; j++) {
    if (text[j] !== '$' || j + 1 >= text.length) continue
    out += text.slice(i, j)
    const [name, width] = shellName(text.slice(j + 1))
    if (name === '' && width > 0) {
      // invalid syntax ("${" or "${}"): the characters are eaten
    } else if (name === '') out += '$'
    else out += lookup(name)
    j += width
    i = j + 1
  }
  return out + text.slice(i)
}

function shellName(s: string): [string, number] {
  if (s[0] === '{') {
    if (s.length > 2 && SPECIAL.has(s[1] as string) && s[2] === '}') return [s.slice(1, 2), 3]
    for (let i = 1; i < s.length; i++) {
      if (s[i] === '}') return i === 1 ? ['', 2] : [s.slice(1, i), i + 1]
    }
    return ['', 1]
  }
  if (SPECIAL.has(s[0] as string)) return [s.slice(0, 1), 1]
  let i = 0
  while (i < s.length && isAlnum(s[i] as string)) i++
  return [s.slice(0, i), i]
}

export interface CommandResult {
  /** The expanded argv that was run. */
  readonly argv: readonly string[]
  /** Exit status; undefined when killed by a signal or never started. */
  readonly code: number | undefined
  readonly signal: NodeJS.Signals | undefined
  readonly stdout: string
  readonly stderr: string
  /** Why it failed to start (ENOENT, EACCES) or was stopped (time limit, abort). */
  readonly error?: string
}

export const commandOk = (r: CommandResult): boolean => r.code === 0 && r.error === undefined

/** "exit status 3", "killed by SIGTERM", "spawn ENOENT": how a failed command ended, for logs. */
export function describeOutcome(r: CommandResult): string {
  if (r.error !== undefined) return r.error
  if (r.signal) return `killed by ${r.signal}`
  return `exit status ${String(r.code)}`
}

export interface RunCommandOptions {
  /** Variables for expansion and the child's environment (on top of process.env). */
  readonly vars: Readonly<Record<string, string>>
  /** Written to stdin, followed by "\n" (flannel). */
  readonly stdin: string
  readonly timeoutMs: number
  readonly signal: AbortSignal
  /** Default process.env. */
  readonly baseEnv?: NodeJS.ProcessEnv
}

/** Most output kept per stream: a chatty command must not grow the daemon. */
const MAX_OUTPUT = 1 << 20

/** Runs `fields` (already split) to completion; never rejects. */
export function runCommand(fields: readonly string[], opts: RunCommandOptions): Promise<CommandResult> {
  const env = { ...(opts.baseEnv ?? process.env), ...opts.vars }
  const argv = fields.map((f) => expandVars(f, (name) => env[name] ?? ''))
  return new Promise((resolve) => {
    const out: Buffer[] = []
    const err: Buffer[] = []
    let outLen = 0
    let errLen = 0
    let stopped: string | undefined
    const child = spawn(argv[0] as string, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] })
    const kill = (why: string): void => {
      stopped ??= why
      child.kill('SIGTERM')
      setTimeout(() => child.kill('SIGKILL'), 2000).unref()
    }
    const timer = setTimeout(() => kill(`timed out after ${opts.timeoutMs} ms`), opts.timeoutMs)
    const onAbort = (): void => kill('stopped: the daemon is shutting down')
    opts.signal.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (d: Buffer) => { if (outLen < MAX_OUTPUT) { out.push(d); outLen += d.length } })
    child.stderr.on('data', (d: Buffer) => { if (errLen < MAX_OUTPUT) { err.push(d); errLen += d.length } })
    // A command that does not read stdin closes the pipe: EPIPE is not a failure of the command.
    child.stdin.on('error', () => {})
    child.stdin.end(`${opts.stdin}\n`)
    let spawnError: string | undefined
    child.on('error', (e: NodeJS.ErrnoException) => { spawnError ??= `could not start ${argv[0]}: ${e.code ?? e.message}` })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      opts.signal.removeEventListener('abort', onAbort)
      const error = spawnError ?? stopped
      resolve({
        argv,
        code: code ?? undefined,
        signal: signal ?? undefined,
        stdout: Buffer.concat(out).toString('utf8').trim(),
        stderr: Buffer.concat(err).toString('utf8').trim(),
        ...(error === undefined ? {} : { error }),
      })
    })
    if (opts.signal.aborted) onAbort()
  })
}
