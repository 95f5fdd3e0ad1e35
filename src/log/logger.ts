/**
 * Injected structured logger: a fixed message, then a flat context object, then an error
 * (lodestar's shape). Components get `logger.child({ component: 'backend/vxlan' })`.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug'
export type LogFields = Readonly<Record<string, unknown>>

export interface Logger {
  error(msg: string, fields?: LogFields, err?: unknown): void
  warn(msg: string, fields?: LogFields, err?: unknown): void
  info(msg: string, fields?: LogFields, err?: unknown): void
  debug(msg: string, fields?: LogFields, err?: unknown): void
  child(fields: LogFields): Logger
}

export const LEVELS: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 }

export interface LogEntry {
  level: LogLevel
  msg: string
  fields: LogFields
  err?: unknown
}

/** Base that routes every call to one sink; subclasses decide where entries go. */
export abstract class BaseLogger implements Logger {
  constructor(protected readonly bound: LogFields = {}) {}
  protected abstract write(entry: LogEntry): void
  protected abstract derive(fields: LogFields): Logger
  private log(level: LogLevel, msg: string, fields?: LogFields, err?: unknown): void {
    this.write({ level, msg, fields: { ...this.bound, ...fields }, ...(err === undefined ? {} : { err }) })
  }
  error(msg: string, fields?: LogFields, err?: unknown): void { this.log('error', msg, fields, err) }
  warn(msg: string, fields?: LogFields, err?: unknown): void { this.log('warn', msg, fields, err) }
  info(msg: string, fields?: LogFields, err?: unknown): void { this.log('info', msg, fields, err) }
  debug(msg: string, fields?: LogFields, err?: unknown): void { this.log('debug', msg, fields, err) }
  child(fields: LogFields): Logger { return this.derive({ ...this.bound, ...fields }) }
}

/** Records entries; shared array across children so a test sees every component. */
export class MemoryLogger extends BaseLogger {
  constructor(readonly entries: LogEntry[] = [], bound: LogFields = {}) {
    super(bound)
  }
  protected write(entry: LogEntry): void { this.entries.push(entry) }
  protected derive(fields: LogFields): Logger { return new MemoryLogger(this.entries, fields) }
  /** Entries whose message equals `msg`. */
  find(msg: string): LogEntry[] { return this.entries.filter((e) => e.msg === msg) }
}

export const silentLogger: Logger = {
  error() {}, warn() {}, info() {}, debug() {},
  child() { return silentLogger },
}
