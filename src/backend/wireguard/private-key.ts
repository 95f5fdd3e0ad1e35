/**
 * This host's WireGuard private key, kept across restarts so peers keep our public key (flannel
 * device.go setupKeys): `/run/flannel/wgkey`, or the file named by WIREGUARD_KEY_FILE. A missing
 * file gets a new key (directory 0755, file 0400, as flannel writes it); an unreadable or
 * malformed one is an error naming the file, never silently replaced.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { WeftError } from '../../errors.ts'
import { decodeKey, generatePrivateKey, publicKeyOf } from '../../kernel/wireguard-keys.ts'

export const DEFAULT_KEY_FILE = '/run/flannel/wgkey'

export function keyFilePath(env: NodeJS.ProcessEnv = process.env): string {
  // flannel: set (even empty) wins over the default.
  return env['WIREGUARD_KEY_FILE'] ?? DEFAULT_KEY_FILE
}

/** Reads (or creates) the key; `created` tells whether a new one was written. */
export function loadPrivateKey(path: string): { privateKey: string; publicKey: string; created: boolean } {
  let text: string | undefined
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new WeftError('BACKEND_UNSUPPORTED', `wireguard: cannot read the private key file ${path}: ${(err as Error).message}`, { cause: err })
    }
  }
  if (text !== undefined) {
    if (!decodeKey(text)) throw new WeftError('BACKEND_UNSUPPORTED', `wireguard: ${path} does not hold a WireGuard private key (32 bytes in base64, as \`wg genkey\` prints); fix or delete it`)
    const privateKey = text.trim()
    return { privateKey, publicKey: publicKeyOf(privateKey), created: false }
  }
  const privateKey = generatePrivateKey()
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 })
    writeFileSync(path, privateKey, { mode: 0o400, flag: 'wx' })
  } catch (err) {
    throw new WeftError('BACKEND_UNSUPPORTED', `wireguard: cannot write the private key file ${path}: ${(err as Error).message}`, { cause: err })
  }
  return { privateKey, publicKey: publicKeyOf(privateKey), created: true }
}
