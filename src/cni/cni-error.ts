/** A CNI error: `code` per the spec (1 version, 4 env, 6 decode, 7 config, 11 try again later; ≥100 weft's). */
export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg)
    this.name = 'CniError'
  }
}
