/**
 * Runs synchronous code inside a named network namespace (/var/run/netns/<name>) by setns() on
 * the calling (main) thread, and always switches back. Sockets and TUN fds created inside stay
 * bound to that namespace; libuv's threadpool threads never move, so anything namespace-relative
 * (/proc/sys, /dev/net/tun) must be done synchronously inside `run`.
 */
import { closeSync, openSync } from 'node:fs'
import { CLONE_NEWNET, errnoName, libc } from './libc.ts'

export class Netns {
  private readonly target: number
  private readonly home: number

  constructor(readonly name: string) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new RangeError(`invalid netns name: ${name}`)
    this.home = openSync('/proc/thread-self/ns/net', 'r')
    try {
      this.target = openSync(`/var/run/netns/${name}`, 'r')
    } catch (err) {
      closeSync(this.home)
      throw err
    }
  }

  run<T>(fn: () => T): T {
    const c = libc()
    if (c.setns(this.target, CLONE_NEWNET) < 0) throw new Error(`setns ${this.name}: ${errnoName(c.errno())}`)
    try {
      return fn()
    } finally {
      // Staying in the wrong namespace would silently misdirect every later socket: never ignore this.
      if (c.setns(this.home, CLONE_NEWNET) < 0) {
        process.stderr.write(`weft: cannot return from netns ${this.name}: ${errnoName(c.errno())}\n`)
        process.abort()
      }
    }
  }

  close(): void {
    closeSync(this.target)
    closeSync(this.home)
  }
}

/** Runs `fn` in `ns` when given, else in the current namespace. */
export function inNetns<T>(ns: Netns | undefined, fn: () => T): T {
  return ns ? ns.run(fn) : fn()
}
