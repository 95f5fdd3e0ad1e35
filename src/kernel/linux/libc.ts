/**
 * The few libc calls LinuxKernel needs, bound through koffi (FFI). Loaded lazily so that importing
 * this module costs nothing on hosts that only use MemoryKernel. Buffers passed as `void *` are
 * read and written in place.
 */
import { constants } from 'node:os'
import { koffi } from './koffi.ts'

export interface Libc {
  socket(domain: number, type: number, protocol: number): number
  bind(fd: number, addr: Buffer, len: number): number
  listen(fd: number, backlog: number): number
  send(fd: number, buf: Buffer, len: number, flags: number): number
  recv(fd: number, buf: Buffer, len: number, flags: number): number
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number
  ioctl(fd: number, request: number, arg: Buffer): number
  setns(fd: number, nstype: number): number
  close(fd: number): number
  poll(fds: Buffer, n: number, timeoutMs: number): number
  /** glibc's malloc_trim: returns free heap pages of every arena to the kernel. */
  mallocTrim(pad: number): number
  /** madvise(2) on a range of this process's address space. */
  madvise(start: bigint, length: number, advice: number): number
  /** errno of the last failed call. */
  errno(): number
}

let cached: Libc | undefined

export function libc(): Libc {
  if (cached) return cached
  const lib = koffi().load('libc.so.6')
  const fn = (sig: string): ((...args: unknown[]) => number) => {
    const f = lib.func(sig)
    return (...args: unknown[]) => Number(f(...args))
  }
  const socket = fn('int socket(int, int, int)')
  const bind = fn('int bind(int, void *, int)')
  const listen = fn('int listen(int, int)')
  const send = fn('long send(int, void *, unsigned long, int)')
  const recv = fn('long recv(int, void *, unsigned long, int)')
  const setsockopt = fn('int setsockopt(int, int, int, void *, int)')
  const ioctl = fn('int ioctl(int, unsigned long, void *)')
  const setns = fn('int setns(int, int)')
  const close = fn('int close(int)')
  const poll = fn('int poll(void *, unsigned long, int)')
  const mallocTrim = fn('int malloc_trim(unsigned long)')
  const madvise = fn('int madvise(uintptr_t, unsigned long, int)')
  cached = {
    socket: (d, t, p) => socket(d, t, p),
    bind: (fd, a, l) => bind(fd, a, l),
    listen: (fd, b) => listen(fd, b),
    send: (fd, b, l, f) => send(fd, b, l, f),
    recv: (fd, b, l, f) => recv(fd, b, l, f),
    setsockopt: (fd, lv, n, v, l) => setsockopt(fd, lv, n, v, l),
    ioctl: (fd, r, a) => ioctl(fd, r, a),
    setns: (fd, t) => setns(fd, t),
    close: (fd) => close(fd),
    poll: (fds, n, t) => poll(fds, n, t),
    mallocTrim: (pad) => mallocTrim(pad),
    madvise: (start, length, advice) => madvise(start, length, advice),
    errno: () => koffi().errno(),
  }
  return cached
}

const ERRNO_NAMES = new Map<number, string>()
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name)
// Prefer the names iproute2 and the kernel sources use for aliased values.
for (const name of ['EAGAIN', 'EOPNOTSUPP'] as const) ERRNO_NAMES.set(constants.errno[name], name)

/** Symbolic name of an errno value ('EEXIST'), or `E<n>` when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`
}

export const AF_UNIX = 1
export const SOCK_STREAM = 1
export const AF_NETLINK = 16
export const SOCK_RAW = 3
export const SOCK_NONBLOCK = 0o4000
export const SOCK_CLOEXEC = 0o2000000
export const NETLINK_ROUTE = 0
export const SOL_SOCKET = 1
export const SO_SNDBUF = 7
export const SO_RCVBUF = 8
export const SO_SNDBUFFORCE = 32
export const SO_RCVBUFFORCE = 33
export const SOL_NETLINK = 270
export const NETLINK_ADD_MEMBERSHIP = 1
export const NETLINK_CAP_ACK = 10
export const NETLINK_EXT_ACK = 11
export const MSG_DONTWAIT = 0x40
export const CLONE_NEWNET = 0x40000000
export const POLLIN = 1
