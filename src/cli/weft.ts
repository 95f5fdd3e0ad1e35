#!/usr/bin/env node
/**
 * `weft`, the operator CLI, and (when CNI_COMMAND is set) the `weft` CNI plugin: one executable,
 * as the CNI plugin needs only a name in the CNI bin directory. Exit codes: 0 ok, 1 runtime
 * failure, 2 usage or config error.
 */
import { runWeft } from './weft-main.ts'

const controller = new AbortController()
process.on('SIGINT', () => controller.abort(new Error('interrupted')))
process.on('SIGTERM', () => controller.abort(new Error('terminated')))
runWeft(process.argv.slice(2), process.env, controller.signal).then(
  (code) => { process.exitCode = code },
  (err: unknown) => {
    process.stderr.write(`weft: internal error: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  },
)
