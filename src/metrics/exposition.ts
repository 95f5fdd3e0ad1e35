/**
 * A small Prometheus registry and the text exposition format (version 0.0.4): counters, gauges
 * (set, or read from a callback at scrape time) and histograms with fixed label names. Chosen
 * over prom-client for memory (src/metrics/README.md): weftd's budget is 50 MiB and it idles
 * near 48, and this is the part of prom-client weft needs: HELP and TYPE lines, label escaping,
 * cumulative buckets.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram'

interface Series {
  readonly labels: readonly string[]
  value: number
  /** Histograms: per-bucket counts (not cumulative) and the sum. */
  buckets?: number[]
  sum?: number
}

abstract class Family {
  protected readonly series = new Map<string, Series>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
  ) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name ${name}`)
  }

  protected get(labels: readonly string[]): Series {
    if (labels.length !== this.labelNames.length) throw new Error(`${this.name}: expected labels ${this.labelNames.join(',')}, got ${labels.length} values`)
    const key = labels.join('\u0000')
    let s = this.series.get(key)
    if (!s) {
      s = this.fresh(labels)
      this.series.set(key, s)
    }
    return s
  }

  protected fresh(labels: readonly string[]): Series {
    return { labels, value: 0 }
  }

  /** Makes the series exist with value 0, so a family shows every label set from the start. */
  touch(...labels: string[]): void {
    this.get(labels)
  }

  /** Sum over the series whose labels pass `match` (histograms: the observation count). */
  total(match: (labels: Readonly<Record<string, string>>) => boolean = () => true): number {
    let sum = 0
    for (const s of this.series.values()) {
      const labels = Object.fromEntries(this.labelNames.map((n, i) => [n, s.labels[i] as string]))
      if (match(labels)) sum += s.value
    }
    return sum
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`)
    for (const s of this.series.values()) this.renderSeries(s, out)
  }

  protected renderSeries(s: Series, out: string[]): void {
    out.push(`${this.name}${labelText(this.labelNames, s.labels)} ${formatValue(s.value)}`)
  }
}

export class Counter extends Family {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`)
    super(name, help, 'counter', labelNames)
  }
  inc(labels: readonly string[] = [], by = 1): void {
    this.get(labels).value += by
  }
  /** For counters kept elsewhere (the udp worker's): the current total. */
  set(labels: readonly string[], total: number): void {
    this.get(labels).value = total
  }
}

export class Gauge extends Family {
  private readonly readers = new Map<string, { labels: readonly string[]; read: () => number | undefined }>()
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, 'gauge', labelNames)
  }
  set(labels: readonly string[], value: number): void {
    this.get(labels).value = value
  }
  /** Removes a series (a lease without TTL has no expiration). */
  remove(labels: readonly string[]): void {
    this.series.delete(labels.join('\u0000'))
  }
  /** Reads the value at scrape time; a reader returning undefined leaves the series out. */
  observe(labels: readonly string[], read: () => number | undefined): void {
    this.readers.set(labels.join('\u0000'), { labels, read })
  }
  override render(out: string[]): void {
    for (const [key, r] of this.readers) {
      const v = r.read()
      if (v === undefined) this.series.delete(key)
      else this.set(r.labels, v)
    }
    super.render(out)
  }
}

export class Histogram extends Family {
  constructor(name: string, help: string, labelNames: readonly string[], readonly bounds: readonly number[]) {
    super(name, help, 'histogram', labelNames)
    if (bounds.some((b, i) => i > 0 && b <= (bounds[i - 1] as number))) throw new Error(`${name}: buckets must increase`)
  }
  protected override fresh(labels: readonly string[]): Series {
    return { labels, value: 0, buckets: this.bounds.map(() => 0), sum: 0 }
  }
  observe(labels: readonly string[], value: number): void {
    const s = this.get(labels)
    s.value++
    s.sum = (s.sum as number) + value
    const i = this.bounds.findIndex((b) => value <= b)
    if (i >= 0) { const b = s.buckets as number[]; b[i] = (b[i] as number) + 1 }
  }
  protected override renderSeries(s: Series, out: string[]): void {
    const names = [...this.labelNames, 'le']
    let cumulative = 0
    this.bounds.forEach((bound, i) => {
      cumulative += (s.buckets as number[])[i] as number
      out.push(`${this.name}_bucket${labelText(names, [...s.labels, formatValue(bound)])} ${cumulative}`)
    })
    out.push(`${this.name}_bucket${labelText(names, [...s.labels, '+Inf'])} ${s.value}`)
    out.push(`${this.name}_sum${labelText(this.labelNames, s.labels)} ${formatValue(s.sum as number)}`)
    out.push(`${this.name}_count${labelText(this.labelNames, s.labels)} ${s.value}`)
  }
}

export class Registry {
  private readonly families = new Map<string, Family>()
  /** Runs before each render (process metrics are read then). */
  private readonly collectors: (() => void)[] = []

  register<F extends Family>(family: F): F {
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} registered twice`)
    this.families.set(family.name, family)
    return family
  }
  onCollect(collect: () => void): void {
    this.collectors.push(collect)
  }
  /** The text exposition: every family, HELP and TYPE first, a newline at the end. */
  render(): string {
    for (const c of this.collectors) c()
    const out: string[] = []
    for (const f of this.families.values()) f.render(out)
    return out.join('\n') + '\n'
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function escapeLabel(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return ''
  return `{${names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`).join(',')}}`
}

export function formatValue(v: number): string {
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  if (Number.isNaN(v)) return 'NaN'
  return String(v)
}
