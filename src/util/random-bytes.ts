/**
 * Random bytes from the kernel's CSPRNG. weftd needs a handful (a VTEP MAC, a temp file name);
 * node:crypto would initialise OpenSSL for them, which costs ~1.5 MB of resident memory for the
 * daemon's whole life.
 */
import { closeSync, openSync, readSync } from 'node:fs'

export function randomBytes(n: number): Buffer {
  const out = Buffer.alloc(n)
  const fd = openSync('/dev/urandom', 'r')
  try {
    let got = 0
    while (got < n) got += readSync(fd, out, got, n - got, null)
  } finally {
    closeSync(fd)
  }
  return out
}
