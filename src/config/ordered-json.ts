/**
 * A small JSON reader that keeps what `JSON.parse` throws away and Go's encoding/json relies on:
 * every object member in source order (duplicate and case-variant keys included, so a later
 * "network" can override an earlier "Network") and the literal text of numbers (so `24.0`
 * can be refused for an unsigned field, as Go does).
 */
import { ConfigError } from '../errors.ts'

/** A JSON number with its source text. */
export interface JsonNumber {
  readonly kind: 'number'
  readonly text: string
  readonly value: number
}

/** A JSON object as an ordered list of members, duplicates kept. */
export interface JsonObject {
  readonly kind: 'object'
  readonly entries: ReadonlyArray<readonly [string, JsonValue]>
}

/** Any JSON value; objects and numbers keep their source detail. */
export type JsonValue = null | boolean | string | JsonNumber | JsonObject | JsonValue[]

/** Parses `text`; throws ConfigError (field '') naming the byte offset of the first error. */
export function parseOrderedJson(text: string): JsonValue {
  const reader = new Reader(text)
  reader.ws()
  const value = reader.value(0)
  reader.ws()
  if (reader.pos < text.length) reader.fail('unexpected data after the top-level value')
  return value
}

/** Converts to plain JS values; duplicate keys: the last wins, as with JSON.parse. */
export function toPlain(value: JsonValue): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(toPlain)
  if (value.kind === 'number') return value.value
  const out: Record<string, unknown> = {}
  for (const [k, v] of value.entries) out[k] = toPlain(v)
  return out
}

/** The JSON type name used in error messages ("string", "number", "object", ...). */
export function jsonTypeName(value: JsonValue): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'object') return value.kind
  return typeof value
}

const MAX_DEPTH = 64
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y

class Reader {
  pos = 0
  constructor(private readonly text: string) {}

  fail(what: string): never {
    throw new ConfigError('', `invalid JSON at offset ${this.pos}: ${what}`)
  }

  ws(): void {
    while (this.pos < this.text.length && ' \t\n\r'.includes(this.text[this.pos] as string)) this.pos++
  }

  private match(re: RegExp): string | undefined {
    re.lastIndex = this.pos
    const m = re.exec(this.text)
    if (!m) return undefined
    this.pos += m[0].length
    return m[0]
  }

  private literal(word: string): boolean {
    if (!this.text.startsWith(word, this.pos)) return false
    this.pos += word.length
    return true
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail('nesting too deep')
    const c = this.text[this.pos]
    if (c === '{') return this.object(depth)
    if (c === '[') return this.array(depth)
    if (c === '"') return this.string()
    if (this.literal('true')) return true
    if (this.literal('false')) return false
    if (this.literal('null')) return null
    const num = this.match(NUMBER)
    if (num !== undefined) return { kind: 'number', text: num, value: Number(num) }
    return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`)
  }

  private string(): string {
    const raw = this.match(STRING)
    if (raw === undefined) this.fail('malformed string')
    return JSON.parse(raw) as string
  }

  private object(depth: number): JsonObject {
    this.pos++ // '{'
    const entries: Array<readonly [string, JsonValue]> = []
    this.ws()
    if (this.text[this.pos] === '}') { this.pos++; return { kind: 'object', entries } }
    for (;;) {
      this.ws()
      if (this.text[this.pos] !== '"') this.fail('expected a string key')
      const key = this.string()
      this.ws()
      if (this.text[this.pos] !== ':') this.fail('expected ":"')
      this.pos++
      this.ws()
      entries.push([key, this.value(depth + 1)])
      this.ws()
      const c = this.text[this.pos]
      if (c === ',') { this.pos++; continue }
      if (c === '}') { this.pos++; return { kind: 'object', entries } }
      this.fail('expected "," or "}"')
    }
  }

  private array(depth: number): JsonValue[] {
    this.pos++ // '['
    const out: JsonValue[] = []
    this.ws()
    if (this.text[this.pos] === ']') { this.pos++; return out }
    for (;;) {
      this.ws()
      out.push(this.value(depth + 1))
      this.ws()
      const c = this.text[this.pos]
      if (c === ',') { this.pos++; continue }
      if (c === ']') { this.pos++; return out }
      this.fail('expected "," or "]"')
    }
  }
}
