/**
 * Throwaway TLS material for tests, made with the openssl CLI: an EC P-256 CA and certificates it
 * signs, as files in a directory the caller owns (and removes).
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' })
}

/** Writes `dir/ca.key` and `dir/ca.crt`. */
export function makeTestCa(dir: string, cn = 'weft-test-ca', days = 1): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', String(days), '-subj', `/CN=${cn}`)
}

/** Writes `dir/<name>.key` and `dir/<name>.crt` for `subject` (e.g. `/CN=etcd`), signed by the CA in `dir`; `ext` holds the X.509 extensions. */
export function issueTestCert(dir: string, name: string, subject: string, ext: string, days = 1): void {
  const f = (x: string): string => join(dir, x)
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subject)
  writeFileSync(f(`${name}.ext`), ext)
  openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', String(days), '-extfile', f(`${name}.ext`))
}
