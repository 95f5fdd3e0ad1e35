/**
 * Reads the YAML a kubeconfig is written in: block mappings and sequences (including the
 * "- key: v" and same-indent "key:\n- item" forms kubectl writes), plain, quoted and block (| >)
 * scalars, comments, and one-line flow collections ({} [] {a: b}). Anchors, aliases, tags,
 * complex keys and multiple documents are refused with the line number.
 *
 * Why not the `yaml` package: measured on this machine (Node 20), requiring yaml 2.9.1 takes
 * 43-67 ms and adds 8.5-10 MiB RSS, against an idle weftd of ~48 MiB in a 50 MiB budget; this
 * reader is a few KB of code. Plain scalars stay strings (null for empty, ~ and null): the
 * kubeconfig reader decides what is a boolean, as sigs.k8s.io/yaml does from the target type.
 */

export class YamlSyntaxError extends Error {
  constructor(readonly line: number, rule: string) {
    super(`line ${line}: ${rule}`)
    this.name = 'YamlSyntaxError'
  }
}

export type YamlValue = string | null | YamlValue[] | { [key: string]: YamlValue }

interface Line {
  /** 1-based, for messages. */
  readonly no: number
  indent: number
  text: string
}

export function parseYaml(source: string): YamlValue {
  const reader = new BlockReader(source)
  const value = reader.node(0)
  reader.expectEnd()
  return value
}

class BlockReader {
  private readonly lines: Line[] = []
  private readonly raw: string[]
  private pos = 0

  constructor(source: string) {
    this.raw = source.replace(/^\uFEFF/, '').split(/\r?\n/)
    let started = false
    this.raw.forEach((text, i) => {
      const no = i + 1
      if (/^%/.test(text)) throw new YamlSyntaxError(no, 'directives (%) are not supported')
      if (/^---(\s|$)/.test(text)) {
        if (started || this.lines.length > 0) throw new YamlSyntaxError(no, 'only one YAML document is supported')
        started = true
        text = text.slice(3)
        if (isBlank(text)) return
        this.lines.push({ no, indent: 0, text: text.trimStart() })
        return
      }
      if (/^\.\.\.(\s|$)/.test(text)) {
        this.raw.length = i // forEach stops visiting past the new length
        return
      }
      const indent = text.length - text.trimStart().length
      if (text.slice(0, indent).includes('\t')) throw new YamlSyntaxError(no, 'tabs are not allowed in indentation')
      this.lines.push({ no, indent, text: text.slice(indent).trimEnd() })
    })
  }

  /** The value whose first line is indented at least `minIndent`; null when there is none. */
  node(minIndent: number): YamlValue {
    const line = this.peek()
    if (line === undefined || line.indent < minIndent) return null
    if (isSequenceItem(line.text)) return this.sequence(line.indent)
    if (mappingKey(line) !== undefined) return this.mapping(line.indent)
    this.pos++
    return this.inlineValue(line, line.text, minIndent - 1)
  }

  expectEnd(): void {
    const line = this.peek()
    if (line !== undefined) throw new YamlSyntaxError(line.no, 'unexpected content (check the indentation)')
  }

  private mapping(indent: number): YamlValue {
    const map: { [key: string]: YamlValue } = Object.create(null)
    for (let line = this.peek(); line !== undefined && line.indent === indent; line = this.peek()) {
      if (isSequenceItem(line.text)) throw new YamlSyntaxError(line.no, 'a sequence item where a mapping key was expected')
      const entry = mappingKey(line)
      if (entry === undefined) throw new YamlSyntaxError(line.no, 'expected "key: value"')
      if (Object.hasOwn(map, entry.key)) throw new YamlSyntaxError(line.no, `duplicate key "${entry.key}"`)
      this.pos++
      map[entry.key] = entry.rest === '' ? this.nestedValue(indent, true) : this.inlineValue(line, entry.rest, indent)
    }
    this.rejectDeeper(indent)
    return map
  }

  private sequence(indent: number): YamlValue {
    const items: YamlValue[] = []
    for (let line = this.peek(); line !== undefined && line.indent === indent && isSequenceItem(line.text); line = this.peek()) {
      const content = line.text.slice(1).trimStart()
      if (content === '' || content.startsWith('#')) {
        this.pos++
        items.push(this.nestedValue(indent, false))
        continue
      }
      // "- key: v" and "- - x": the item is a block starting at the content's column.
      const column = indent + line.text.length - content.length
      const inner: Line = { no: line.no, indent: column, text: content }
      if (isSequenceItem(content) || mappingKey(inner) !== undefined) {
        line.indent = column
        line.text = content
        items.push(this.node(column))
        continue
      }
      this.pos++
      items.push(this.inlineValue(line, content, indent))
    }
    this.rejectDeeper(indent)
    return items
  }

  /** The value after "key:" or "-" alone on its line. */
  private nestedValue(parentIndent: number, allowSameIndentSequence: boolean): YamlValue {
    const next = this.peek()
    if (next === undefined) return null
    if (next.indent > parentIndent) return this.node(parentIndent + 1)
    if (allowSameIndentSequence && next.indent === parentIndent && isSequenceItem(next.text)) return this.sequence(parentIndent)
    return null
  }

  private rejectDeeper(indent: number): void {
    const line = this.peek()
    if (line !== undefined && line.indent > indent) throw new YamlSyntaxError(line.no, 'bad indentation')
  }

  /** A value that starts on `line` (after "key: " or "- "); continuation lines are deeper than `parentIndent`. */
  private inlineValue(line: Line, text: string, parentIndent: number): YamlValue {
    const first = text[0]
    if (first === '&' || first === '*' || first === '!') throw new YamlSyntaxError(line.no, 'anchors, aliases and tags are not supported')
    if (first === '?' && (text.length === 1 || text[1] === ' ')) throw new YamlSyntaxError(line.no, 'complex keys are not supported')
    if (first === '"' || first === "'") return this.quoted(line, text, parentIndent)
    if (first === '[' || first === '{') {
      const flow = new FlowReader(stripComment(text), line.no)
      const value = flow.value()
      flow.expectEnd()
      return value
    }
    if (first === '|' || first === '>') return this.blockScalar(line, text, parentIndent)
    let value = stripComment(text)
    for (let next = this.peek(); next !== undefined && next.indent > parentIndent && !next.text.startsWith('#'); next = this.peek()) {
      if (mappingKey(next) !== undefined) throw new YamlSyntaxError(next.no, 'bad indentation (a mapping inside a scalar value)')
      value += ' ' + stripComment(next.text)
      this.pos++
    }
    return value === '' || value === '~' || value === 'null' || value === 'Null' || value === 'NULL' ? null : value
  }

  private quoted(line: Line, text: string, parentIndent: number): string {
    const quote = text[0] as '"' | "'"
    let joined = text
    let lastNo = line.no
    // A quoted scalar may continue on deeper lines; a line break folds to a space.
    while (closingQuote(joined, quote) < 0) {
      const next = this.lines[this.pos]
      if (next === undefined || (next.indent <= parentIndent && next.text !== '')) throw new YamlSyntaxError(line.no, 'unterminated quoted string')
      joined += next.text === '' ? '\n' : (joined.endsWith('\n') ? '' : ' ') + next.text
      lastNo = next.no
      this.pos++
    }
    const end = closingQuote(joined, quote)
    if (stripComment(joined.slice(end + 1)) !== '') throw new YamlSyntaxError(lastNo, 'unexpected text after a quoted string')
    const body = joined.slice(1, end)
    return quote === "'" ? body.replaceAll("''", "'") : unescapeDouble(body, line.no)
  }

  private blockScalar(line: Line, header: string, parentIndent: number): string {
    const m = /^([|>])([+-]?)([1-9]?)([+-]?)\s*(#.*)?$/.exec(header)
    if (m === null) throw new YamlSyntaxError(line.no, `bad block scalar header "${header}"`)
    const folded = m[1] === '>'
    const chomp = m[2] || m[4]
    // Block scalars keep their text verbatim: read the raw lines, blank ones included.
    const body: string[] = []
    let indent = m[3] ? parentIndent + Number(m[3]) : -1
    let rawIndex = line.no
    for (; rawIndex < this.raw.length; rawIndex++) {
      const raw = this.raw[rawIndex] as string
      const lead = raw.length - raw.trimStart().length
      if (raw.trim() === '') {
        body.push('')
        continue
      }
      if (indent < 0) indent = lead
      if (lead < indent || lead <= parentIndent) break
      body.push(raw.slice(indent).replace(/\r$/, ''))
    }
    while (this.peek() !== undefined && (this.peek() as Line).no <= rawIndex) this.pos++
    let trailing = 0
    while (body.length > 0 && body[body.length - 1] === '') {
      body.pop()
      trailing++
    }
    let text = folded ? foldLines(body) : body.join('\n')
    if (body.length === 0) return ''
    if (chomp === '+') text += '\n'.repeat(trailing + 1)
    else if (chomp !== '-') text += '\n'
    return text
  }

  private peek(): Line | undefined {
    while (this.pos < this.lines.length) {
      const line = this.lines[this.pos] as Line
      if (line.text !== '' && !line.text.startsWith('#')) return line
      this.pos++
    }
    return undefined
  }
}

/** One-line flow collections: [a, "b"], {k: v}, nested. */
class FlowReader {
  private i = 0
  constructor(private readonly text: string, private readonly no: number) {}

  value(): YamlValue {
    this.space()
    const c = this.text[this.i]
    if (c === '[') return this.list()
    if (c === '{') return this.map()
    if (c === '"' || c === "'") return this.quoted()
    if (c === '&' || c === '*' || c === '!') this.fail('anchors, aliases and tags are not supported')
    const start = this.i
    while (this.i < this.text.length && !',]}'.includes(this.text[this.i] as string) && !this.text.startsWith(': ', this.i)) this.i++
    const plain = this.text.slice(start, this.i).trim()
    return plain === '' || plain === '~' || plain === 'null' ? null : plain
  }

  expectEnd(): void {
    this.space()
    if (this.i < this.text.length) this.fail('unexpected text after a flow collection (flow collections must fit on one line)')
  }

  private list(): YamlValue[] {
    const items: YamlValue[] = []
    this.i++
    for (this.space(); this.text[this.i] !== ']'; this.space()) {
      items.push(this.value())
      this.space()
      if (this.text[this.i] === ',') this.i++
      else if (this.text[this.i] !== ']') this.fail('expected "," or "]"')
    }
    this.i++
    return items
  }

  private map(): { [key: string]: YamlValue } {
    const map: { [key: string]: YamlValue } = Object.create(null)
    this.i++
    for (this.space(); this.text[this.i] !== '}'; this.space()) {
      const key = this.value()
      if (typeof key !== 'string') this.fail('a flow mapping key must be a string')
      this.space()
      let value: YamlValue = null
      if (this.text[this.i] === ':') {
        this.i++
        value = this.value()
        this.space()
      }
      map[key as string] = value
      if (this.text[this.i] === ',') this.i++
      else if (this.text[this.i] !== '}') this.fail('expected "," or "}"')
    }
    this.i++
    return map
  }

  private quoted(): string {
    const quote = this.text[this.i] as '"' | "'"
    const rest = this.text.slice(this.i)
    const end = closingQuote(rest, quote)
    if (end < 0) this.fail('unterminated quoted string')
    this.i += end + 1
    const body = rest.slice(1, end)
    return quote === "'" ? body.replaceAll("''", "'") : unescapeDouble(body, this.no)
  }

  private space(): void {
    while (this.text[this.i] === ' ') this.i++
    if (this.i >= this.text.length && this.text.length > 0 && this.text[this.text.length - 1] !== ']' && this.text[this.text.length - 1] !== '}') this.fail('flow collections must fit on one line')
  }

  private fail(rule: string): never {
    throw new YamlSyntaxError(this.no, rule)
  }
}

function isBlank(text: string): boolean {
  return text.trim() === '' || text.trim().startsWith('#')
}

function isSequenceItem(text: string): boolean {
  return text === '-' || text.startsWith('- ')
}

/** "key: rest" or "key:" on a line, plain or quoted key; undefined when the line is no mapping entry. */
function mappingKey(line: Line): { key: string; rest: string } | undefined {
  const text = line.text
  if (text.startsWith('"') || text.startsWith("'")) {
    const end = closingQuote(text, text[0] as '"' | "'")
    if (end < 0 || text[end + 1] !== ':' || (text.length > end + 2 && text[end + 2] !== ' ')) return undefined
    const body = text.slice(1, end)
    const key = text[0] === "'" ? body.replaceAll("''", "'") : unescapeDouble(body, line.no)
    return { key, rest: text.slice(end + 2).trim() }
  }
  if (/^[[{&*!|>%@`]/.test(text)) return undefined
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '#' && i > 0 && text[i - 1] === ' ') return undefined
    if (text[i] === ':' && (i === text.length - 1 || text[i + 1] === ' ')) {
      const key = text.slice(0, i).trim()
      return key === '' ? undefined : { key, rest: text.slice(i + 1).trim() }
    }
  }
  return undefined
}

/** Index of the quote closing the one at text[0], or -1. */
function closingQuote(text: string, quote: '"' | "'"): number {
  for (let i = 1; i < text.length; i++) {
    if (quote === '"' && text[i] === '\\') i++
    else if (text[i] === quote) {
      if (quote === "'" && text[i + 1] === "'") i++
      else return i
    }
  }
  return -1
}

function stripComment(text: string): string {
  const m = /(^|\s)#/.exec(text)
  return (m === null ? text : text.slice(0, m.index)).trim()
}

const ESCAPES: Readonly<Record<string, string>> = {
  '0': '\0', a: '\x07', b: '\b', t: '\t', '\t': '\t', n: '\n', v: '\v', f: '\f', r: '\r', e: '\x1b',
  ' ': ' ', '"': '"', '/': '/', '\\': '\\', N: '\x85', _: '\xa0', L: '\u2028', P: '\u2029',
}

function unescapeDouble(body: string, no: number): string {
  return body.replace(/\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)/gs, (_, e: string) => {
    if (e.length > 1) return String.fromCodePoint(parseInt(e.slice(1), 16))
    const s = ESCAPES[e]
    if (s === undefined) throw new YamlSyntaxError(no, `unknown escape "\\${e}" in a double-quoted string`)
    return s
  })
}

/** Folded (>) scalar: single line breaks become spaces, blank lines stay breaks, indented lines stay as they are. */
function foldLines(lines: readonly string[]): string {
  let out = ''
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (i > 0) {
      const prev = lines[i - 1] as string
      const literal = line.startsWith(' ') || prev.startsWith(' ')
      out += line === '' || prev === '' || literal ? '\n' : ' '
    }
    out += line
  }
  return out.replace(/\n\n/g, '\n')
}
