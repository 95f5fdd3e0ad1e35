/** Reported by `weftd --version` and `weft version`. */
export const VERSION = 'v0.1.0'
