/**
 * WireGuard keys (Curve25519, 32 bytes, base64 as `wg genkey` prints them) with node:crypto's
 * X25519: no `wg` binary is needed to make or read a key.
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'

export const KEY_BYTES = 32

/** The 32 bytes of a base64 key, or undefined when it is not one. */
export function decodeKey(text: string): Buffer | undefined {
  const t = text.trim()
  if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(t)) return undefined
  return Buffer.from(t, 'base64')
}

/** A new private key, clamped as `wg genkey` and wgtypes.GeneratePrivateKey clamp it. */
export function generatePrivateKey(random: (n: number) => Buffer = randomBytes): string {
  const k = Buffer.from(random(KEY_BYTES))
  k[0] = (k[0] as number) & 248
  k[31] = ((k[31] as number) & 127) | 64
  return k.toString('base64')
}

/** The public key of a base64 private key (X25519 clamps internally, as WireGuard does). */
export function publicKeyOf(privateKey: string): string {
  const raw = decodeKey(privateKey)
  if (!raw) throw new RangeError('not a WireGuard key (32 bytes in base64)')
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: raw.toString('base64url'), x: '' }, format: 'jwk' })
  const x = createPublicKey(key).export({ format: 'jwk' }).x as string
  return Buffer.from(x, 'base64url').toString('base64')
}

/** base64 → hex (the UAPI's key form). */
export const keyToHex = (key: string): string => (decodeKey(key) ?? Buffer.alloc(0)).toString('hex')
/** hex → base64. */
export const hexToKey = (hex: string): string => Buffer.from(hex, 'hex').toString('base64')
