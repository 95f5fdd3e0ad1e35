/**
 * The `weft` CNI plugin (flannel-plugin compatible): reads subnet.env, delegates to `bridge`
 * with `host-local` IPAM for this host's subnet, and keeps the delegate config per container so
 * DEL and CHECK work even after subnet.env changed or vanished. Supports ADD, DEL, CHECK and
 * VERSION. The one behaviour change from flannel: a missing subnet.env is CNI error 11 ("try
 * again later") with a message saying what is wrong, optionally after waiting for the file.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { systemClock, type Clock } from '../util/clock.ts'
import { errorMessage } from '../errors.ts'
import { missingSubnetEnvKeys, parseSubnetEnv, type SubnetEnv } from './subnet-env.ts'
import { buildDelegateConf, type Json, type WeftNetConf } from './delegate-conf.ts'
import { parseNetConf, SUPPORTED_VERSIONS } from './net-conf.ts'
import { findPlugin, spawnPlugin, type PluginExec } from './plugin-exec.ts'
import { CniError } from './cni-error.ts'

export { CniError }

export interface CniOutput {
  readonly stdout: string
  readonly exitCode: number
}

export interface CniDeps {
  /** Runs delegate plugins; default spawns them. */
  readonly exec?: PluginExec
  /** Drives the subnet.env wait; default the system clock. */
  readonly clock?: Clock
}

/** Searched after CNI_PATH. */
export const FALLBACK_CNI_DIRS = ['/opt/cni/bin', '/usr/lib/cni', '/usr/libexec/cni'] as const

type Env = Readonly<Record<string, string | undefined>>

/** Runs one CNI command as the spec describes (env + stdin in, JSON + exit code out). */
export async function runCniPlugin(env: Env, stdin: string, deps: CniDeps = {}): Promise<CniOutput> {
  let version = '1.0.0'
  try {
    const command = env.CNI_COMMAND ?? ''
    if (command === 'VERSION') return ok({ cniVersion: versionOf(stdin) ?? '1.0.0', supportedVersions: SUPPORTED_VERSIONS })
    if (!['ADD', 'DEL', 'CHECK'].includes(command)) throw new CniError(4, `unknown CNI_COMMAND "${command}"; expected ADD, DEL, CHECK or VERSION`)
    const conf = parseNetConf(stdin)
    version = conf.cniVersion
    const args = requireEnv(env, command)
    if (command === 'ADD') return await cmdAdd(conf, env, args, deps)
    if (command === 'DEL') return await cmdDel(conf, env, args, deps)
    return await cmdCheck(conf, env, args, deps)
  } catch (err) {
    const e = err instanceof CniError ? err : new CniError(999, errorMessage(err))
    const body: Json = { cniVersion: version, code: e.code, msg: e.message }
    if (e.details !== '') body.details = e.details
    return { stdout: JSON.stringify(body) + '\n', exitCode: 1 }
  }
}

interface CmdArgs {
  readonly containerId: string
  readonly cniPath: string
}

function requireEnv(env: Env, command: string): CmdArgs {
  const need = ['CNI_CONTAINERID', 'CNI_IFNAME', ...(command === 'DEL' ? [] : ['CNI_NETNS'])]
  const missing = need.filter((k) => (env[k] ?? '') === '')
  if (missing.length > 0) throw new CniError(4, `missing environment variable ${missing.join(', ')} for ${command}`)
  const containerId = env.CNI_CONTAINERID as string
  // the id names a file in dataDir
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId)) throw new CniError(4, `CNI_CONTAINERID is not a valid container id: ${containerId}`)
  // CNI_PATH first, then the usual install locations (Debian's containernetworking-plugins
  // puts bridge/host-local in /usr/lib/cni, upstream tarballs in /opt/cni/bin)
  const cniPath = [env.CNI_PATH ?? '', ...FALLBACK_CNI_DIRS].filter((d) => d !== '').join(':')
  return { containerId, cniPath }
}

async function cmdAdd(conf: WeftNetConf, env: Env, args: CmdArgs, deps: CniDeps): Promise<CniOutput> {
  const subnetEnv = await loadSubnetEnv(conf, deps.clock ?? systemClock)
  const missing = missingSubnetEnvKeys(subnetEnv)
  if (missing.length > 0) throw new CniError(7, `subnet.env ${conf.subnetFile} is missing ${missing.join(', ')}`)
  const delegate = buildDelegateConf(conf, subnetEnv)
  const saved = join(conf.dataDir, args.containerId)
  await mkdir(conf.dataDir, { recursive: true, mode: 0o700 })
  // write before delegating so a DEL after a half-done ADD can still clean up
  await writeFile(saved + '.tmp', JSON.stringify(delegate), { mode: 0o600 })
  await rename(saved + '.tmp', saved)
  const res = await delegateCall('ADD', delegate, env, args, deps)
  if (res.exitCode !== 0) await rm(saved, { force: true })
  return res
}

async function cmdDel(conf: WeftNetConf, env: Env, args: CmdArgs, deps: CniDeps): Promise<CniOutput> {
  const saved = join(conf.dataDir, args.containerId)
  let delegate: Json | undefined
  try {
    delegate = await readSaved(saved)
  } catch {
    // as flannel: a corrupt saved config cannot be delegated; the interface goes with the netns
    await rm(saved, { force: true })
    return { stdout: '', exitCode: 0 }
  }
  // per the spec DEL of something already gone succeeds
  if (!delegate) return { stdout: '', exitCode: 0 }
  const res = await delegateCall('DEL', delegate, env, args, deps)
  if (res.exitCode === 0) await rm(saved, { force: true })
  return res
}

async function cmdCheck(conf: WeftNetConf, env: Env, args: CmdArgs, deps: CniDeps): Promise<CniOutput> {
  const delegate = await readSaved(join(conf.dataDir, args.containerId))
  if (!delegate) throw new CniError(7, `no saved delegate config for container ${args.containerId} in ${conf.dataDir}; was ADD run?`)
  const withPrev: Json = { ...delegate, cniVersion: conf.cniVersion }
  if (conf.prevResult !== undefined) withPrev.prevResult = conf.prevResult
  return delegateCall('CHECK', withPrev, env, args, deps)
}

async function delegateCall(command: string, delegate: Json, env: Env, args: CmdArgs, deps: CniDeps): Promise<CniOutput> {
  const type = String(delegate.type)
  const path = await findPlugin(type, args.cniPath)
  if (!path) throw new CniError(100, `failed to find delegate plugin "${type}" in ${args.cniPath}; install containernetworking-plugins or set CNI_PATH`)
  const childEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v
  childEnv.CNI_COMMAND = command
  const res = await (deps.exec ?? spawnPlugin)(path, childEnv, JSON.stringify(delegate))
  if (res.code === 0) return { stdout: res.stdout, exitCode: 0 }
  // relay the delegate's CNI error as is; wrap anything else
  if (/^\s*\{/.test(res.stdout)) return { stdout: res.stdout, exitCode: res.code }
  throw new CniError(100, `delegate plugin ${type} ${command} failed (exit ${res.code})`, res.stderr.trim())
}

async function loadSubnetEnv(conf: WeftNetConf, clock: Clock): Promise<SubnetEnv> {
  const deadline = clock.now() + conf.subnetFileWaitSeconds * 1000
  for (;;) {
    try {
      return parseSubnetEnv(await readFile(conf.subnetFile, 'utf8'))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CniError(7, `failed to load subnet.env ${conf.subnetFile}: ${errorMessage(err)}`)
      if (clock.now() >= deadline) {
        const waited = conf.subnetFileWaitSeconds > 0 ? ` after waiting ${conf.subnetFileWaitSeconds}s` : ''
        throw new CniError(
          11,
          `subnet.env ${conf.subnetFile} does not exist${waited}: weft has not set up this node's pod subnet yet; check that weft is running on this node and its log`,
          'set "subnetFileWaitSeconds" in the CNI config to wait for it',
        )
      }
      await clock.sleep(Math.min(200, Math.max(1, deadline - clock.now())))
    }
  }
}

async function readSaved(path: string): Promise<Json | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return JSON.parse(text) as Json
  } catch {
    throw new CniError(7, `saved delegate config ${path} is not valid JSON`)
  }
}

function versionOf(stdin: string): string | undefined {
  try {
    const v = (JSON.parse(stdin) as Json).cniVersion
    return typeof v === 'string' && v !== '' ? v : undefined
  } catch {
    return undefined
  }
}

function ok(body: Json): CniOutput {
  return { stdout: JSON.stringify(body) + '\n', exitCode: 0 }
}
