/**
 * Loads a cloud SDK package on first use, with require: the SDKs ship CommonJS, and the bundled
 * daemon runs from a V8 code cache (bin/launch.cjs), where a dynamic import() inside a cached
 * function finds no module loader. Only the backend that needs an SDK ever loads it.
 */
import { createRequire } from 'node:module'

export function loadSdk<T>(name: string): T {
  return createRequire(import.meta.url)(name) as T
}
