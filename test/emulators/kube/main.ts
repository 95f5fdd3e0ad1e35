/**
 * Runs the emulator as its own process (e.g. inside a network namespace):
 *   node --import tsx test/emulators/kube/main.ts --listen 10.200.0.250:6443 --tls-dir DIR \
 *     --admin-socket /tmp/x/admin.sock [--config options.json]
 * DIR holds server.crt, server.key and ca.crt (client certificates are checked against ca.crt).
 * options.json: KubeEmulatorOptions without tls/host/port (users, ipam, tuning, anonymousAuth, ...).
 * Prints "ready <url>" on stdout once it serves; SIGTERM/SIGINT close it.
 */
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { KubeEmulator, type KubeEmulatorOptions } from './kube-emulator.ts'
import { localAdmin, serveAdmin } from './admin.ts'

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:6443' },
    'tls-dir': { type: 'string' },
    'admin-socket': { type: 'string' },
    config: { type: 'string' },
  },
})

const listen = values.listen!
const sep = listen.lastIndexOf(':')
const host = listen.slice(0, sep).replace(/^\[|\]$/g, '')
const port = Number(listen.slice(sep + 1))
const opts: KubeEmulatorOptions = values.config ? (JSON.parse(readFileSync(values.config, 'utf8')) as KubeEmulatorOptions) : {}
const dir = values['tls-dir']
const emu = await KubeEmulator.start({
  ...opts,
  host,
  port,
  ...(dir ? { tls: { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')), ca: readFileSync(join(dir, 'ca.crt')) } } : {}),
})
const socket = values['admin-socket']
const adminServer = socket ? await serveAdmin(localAdmin(emu), socket) : undefined

let closing = false
const shutdown = (): void => {
  if (closing) return
  closing = true
  adminServer?.close()
  if (socket) rmSync(socket, { force: true })
  void emu.close().finally(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
process.stdout.write(`ready ${emu.url}\n`)
