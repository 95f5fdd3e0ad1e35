import { BaseLogger, LEVELS, type LogEntry, type LogFields, type LogLevel, type Logger } from './logger.ts'
import { errorMessage } from '../errors.ts'

export interface StreamLoggerOptions {
  level: LogLevel
  /** 'json' for machines, 'human' for a terminal. */
  format: 'json' | 'human'
  write: (line: string) => void
}

/** Production logger: one line per entry on stderr; stacks only at debug level. */
export class StreamLogger extends BaseLogger {
  constructor(private readonly options: StreamLoggerOptions, bound: LogFields = {}) {
    super(bound)
  }
  protected derive(fields: LogFields): Logger { return new StreamLogger(this.options, fields) }
  protected write(entry: LogEntry): void {
    if (LEVELS[entry.level] > LEVELS[this.options.level]) return
    const fields: Record<string, unknown> = { ...entry.fields }
    if (entry.err !== undefined) {
      fields.err = errorMessage(entry.err)
      if (this.options.level === 'debug' && entry.err instanceof Error) fields.stack = entry.err.stack
    }
    if (this.options.format === 'json') {
      this.options.write(JSON.stringify({ time: new Date().toISOString(), level: entry.level, msg: entry.msg, ...fields }, jsonSafe) + '\n')
      return
    }
    const ctx = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v, jsonSafe)}`)
    const time = new Date().toISOString().slice(11, 23)
    this.options.write(`${time} ${entry.level.toUpperCase().padEnd(5)} ${entry.msg}${ctx.length ? ' ' + ctx.join(' ') : ''}\n`)
  }
}

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value
}
