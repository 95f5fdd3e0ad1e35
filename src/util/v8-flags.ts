/**
 * Run-time V8 flags (node:v8 setFlagsFromString). V8 stamps a code cache with the flags it was
 * made under and rejects it under others, so bin/launch.cjs writes its pending cache on
 * BEFORE_V8_FLAGS_EVENT, while the flags are still those every start-up begins with.
 */
const BEFORE_V8_FLAGS_EVENT = 'weft:before-v8-flags' // bin/launch.cjs listens by this name

/** False when the runtime refused; a flag only tunes, so callers carry on without it. */
export function setV8Flags(flags: string): boolean {
  try {
    ;(process as NodeJS.EventEmitter).emit(BEFORE_V8_FLAGS_EVENT)
    process.getBuiltinModule('node:v8').setFlagsFromString(flags)
    return true
  } catch {
    return false
  }
}
