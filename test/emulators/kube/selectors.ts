/**
 * Label and field selectors as the API server parses them (k8s.io/apimachinery labels/fields).
 * Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`. Fields: `=`, `==`, `!=`
 * on the labels the resource registers (others: 400 "field label not supported").
 */
import { badRequest } from './status.ts'

type Matcher = (get: (key: string) => string | undefined) => boolean

export type Selector = { readonly empty: boolean; matches(get: (key: string) => string | undefined): boolean; readonly equalities: ReadonlyMap<string, string> }

const EVERYTHING: Selector = { empty: true, matches: () => true, equalities: new Map() }

/** Splits on commas that are not inside parentheses. */
function splitTerms(s: string): string[] {
  const out: string[] = []
  let depth = 0
  let cur = ''
  for (const c of s) {
    if (c === '(') depth++
    if (c === ')') depth--
    if (c === ',' && depth === 0) { out.push(cur); cur = '' } else cur += c
  }
  out.push(cur)
  return out
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

export function parseLabelSelector(raw: string | null): Selector {
  if (raw === null || raw.trim() === '') return EVERYTHING
  const matchers: Matcher[] = []
  const equalities = new Map<string, string>()
  for (const term0 of splitTerms(raw)) {
    const term = term0.trim()
    const fail = (): never => { throw badRequest(`unable to parse requirement: found '${term}', expected: identifier`) }
    let m: RegExpMatchArray | null
    const key = (k: string): string => {
      if (!LABEL_KEY.test(k) || k.length > 316) throw badRequest(`unable to parse requirement: values[0][${k}]: Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`)
      return k
    }
    const value = (v: string): string => {
      if (!LABEL_VALUE.test(v) || v.length > 63) throw badRequest(`unable to parse requirement: values[0][${v}]: Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`)
      return v
    }
    if ((m = term.match(/^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$/))) {
      const k = key(m[1]!)
      const set = new Set(m[3]!.split(',').map((v) => value(v.trim())))
      const inSet = m[2] === 'in'
      matchers.push((get) => { const v = get(k); return inSet ? v !== undefined && set.has(v) : v === undefined || !set.has(v) })
    } else if ((m = term.match(/^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)$/))) {
      const k = key(m[1]!)
      const v = value(m[3]!)
      if (m[2] === '!=') matchers.push((get) => get(k) !== v)
      else { matchers.push((get) => get(k) === v); equalities.set(k, v) }
    } else if ((m = term.match(/^!\s*([^\s!=()]+)$/))) {
      const k = key(m[1]!)
      matchers.push((get) => get(k) === undefined)
    } else if ((m = term.match(/^([^\s!=()]+)$/))) {
      const k = key(m[1]!)
      matchers.push((get) => get(k) !== undefined)
    } else fail()
  }
  return { empty: false, matches: (get) => matchers.every((f) => f(get)), equalities }
}

/** `supported`: the field labels the resource registers (metadata.name, spec.unschedulable, ...). */
export function parseFieldSelector(raw: string | null, supported: readonly string[]): Selector {
  if (raw === null || raw.trim() === '') return EVERYTHING
  const matchers: Matcher[] = []
  const equalities = new Map<string, string>()
  for (const term0 of raw.split(',')) {
    const term = term0.trim()
    const m = term.match(/^([^=!]+?)\s*(==|=|!=)\s*(.*)$/)
    if (!m) throw badRequest(`invalid selector: '${raw}'; can't understand '${term}'`)
    const [, k, op, v] = m as unknown as [string, string, string, string]
    if (!supported.includes(k)) throw badRequest(`field label not supported: ${k}`)
    if (op === '!=') matchers.push((get) => get(k) !== v)
    else { matchers.push((get) => get(k) === v); equalities.set(k, v) }
  }
  return { empty: false, matches: (get) => matchers.every((f) => f(get)), equalities }
}
