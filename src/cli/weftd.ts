#!/usr/bin/env node
/**
 * weftd entry point: argv → options → real parts → runDaemon. The only place that calls
 * process.exit: 2 for usage/config errors, 1 for runtime failures, 0 for a clean stop
 * (signal or revoked lease, as flanneld). One line on stderr; stacks only at debug level.
 */
import { runWeftd } from './weftd-main.ts'

const controller = new AbortController()
let signals = 0
const onSignal = (name: string): void => {
  signals++
  if (signals > 1) {
    // A second signal forces the exit (lodestar), e.g. when etcd hangs during shutdown.
    process.stderr.write(`weftd: ${name} again, exiting now\n`)
    process.exit(1)
  }
  controller.abort(new Error(`received ${name}`))
}
process.on('SIGINT', () => onSignal('SIGINT'))
process.on('SIGTERM', () => onSignal('SIGTERM'))

runWeftd(process.argv.slice(2), process.env, controller.signal).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`weftd: internal error: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  },
)
