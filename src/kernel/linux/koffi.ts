/**
 * koffi, loaded on first use: importing the kernel layer costs nothing until a netlink socket is
 * opened (weftd sends its first store requests before that).
 *
 * koffi's entry point finds its native module by reading the ELF header of the node binary
 * (glibc or musl) and probing paths, then wraps a few deprecated helpers: ~5.5 ms at start-up,
 * of which the native module itself is ~2 ms. We load the glibc prebuilt directly when it is
 * there and of the same version, and fall back to koffi's own loader otherwise (musl, other
 * layouts).
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type koffiModule from 'koffi'

type Koffi = typeof koffiModule
const nodeRequire = createRequire(import.meta.url)
let loaded: Koffi | undefined

export function koffi(): Koffi {
  loaded ??= loadDirect() ?? (nodeRequire('koffi') as Koffi)
  return loaded
}

/** The path of koffi's package entry, for worker threads that load it themselves. */
export function koffiPath(): string {
  return nodeRequire.resolve('koffi')
}

function loadDirect(): Koffi | undefined {
  const { platform, arch } = process
  try {
    // Paths inside the prebuilt package, which declares no "exports": resolving koffi's own entry
    // would go through the ESM resolver for its export map, loading modules the daemon never uses.
    const prebuilt = dirname(nodeRequire.resolve(`@koromix/koffi-${platform}-${arch}/package.json`))
    const version = (JSON.parse(readFileSync(join(prebuilt, '..', '..', 'koffi', 'package.json'), 'utf8')) as { version: string }).version
    const native = nodeRequire(join(prebuilt, `${platform}_${arch}`, 'koffi.node')) as Koffi & { version: string }
    return native.version === version ? native : undefined
  } catch {
    return undefined
  }
}
