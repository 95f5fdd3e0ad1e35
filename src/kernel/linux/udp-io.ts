/**
 * Socket and eventfd helpers for the udp backend's data path (main-thread side). The worker
 * binds its own hot-path calls; this file opens the fds it is handed. Uses the shared libc
 * bindings from libc.ts and adds only what those lack (eventfd, write).
 */
import { koffi } from './koffi.ts'
import { errnoName, libc, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE, SO_SNDBUF, SO_SNDBUFFORCE } from './libc.ts'

const AF_INET = 2
const SOCK_DGRAM = 2
const SOCK_CLOEXEC = 0o2000000
const EFD_NONBLOCK = 0o4000
const EFD_CLOEXEC = 0o2000000

/** An fd-level failure, carrying the errno name. */
export class UdpIoError extends Error {
  constructor(readonly op: string, readonly errno: string) {
    super(`${op}: ${errno}`)
    this.name = 'UdpIoError'
  }
}

interface Extra {
  eventfd(init: number, flags: number): number
  write(fd: number, buf: Buffer, len: number): number
}

let extra: Extra | undefined

function extras(): Extra {
  if (extra) return extra
  const lib = koffi().load('libc.so.6')
  const eventfd = lib.func('int eventfd(unsigned int, int)')
  const write = lib.func('long write(int, void *, unsigned long)')
  extra = {
    eventfd: (i, f) => Number(eventfd(i, f)),
    write: (fd, b, l) => Number(write(fd, b, l)),
  }
  return extra
}

/**
 * Opens a blocking IPv4 UDP socket bound to `addr:port` (`addr` as 4 bytes; all zero = any),
 * with socket buffers raised to `bufferBytes` (forced when privileged).
 */
export function openUdpSocket(addr: Uint8Array, port: number, bufferBytes = 4 << 20): number {
  const c = libc()
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)
  if (fd < 0) throw new UdpIoError('socket', errnoName(c.errno()))
  try {
    const size = Buffer.alloc(4)
    size.writeInt32LE(bufferBytes)
    for (const [force, plain] of [[SO_RCVBUFFORCE, SO_RCVBUF], [SO_SNDBUFFORCE, SO_SNDBUF]] as const) {
      if (c.setsockopt(fd, SOL_SOCKET, force, size, 4) < 0) c.setsockopt(fd, SOL_SOCKET, plain, size, 4)
    }
    const sa = Buffer.alloc(16)
    sa.writeUInt16LE(AF_INET, 0)
    sa.writeUInt16BE(port, 2)
    sa.set(addr, 4)
    if (c.bind(fd, sa, 16) < 0) throw new UdpIoError(`bind ${[...addr].join('.')}:${port}`, errnoName(c.errno()))
    return fd
  } catch (err) {
    c.close(fd)
    throw err
  }
}

/** A non-blocking eventfd, used to wake the worker out of poll(). */
export function openEventFd(): number {
  const fd = extras().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
  if (fd < 0) throw new UdpIoError('eventfd', errnoName(libc().errno()))
  return fd
}

const ONE = (() => { const b = Buffer.alloc(8); b.writeBigUInt64LE(1n); return b })()

/** Adds 1 to an eventfd (wakes a poller). */
export function signalEventFd(fd: number): void {
  extras().write(fd, ONE, 8)
}

/** Closes an fd opened here. */
export function closeFd(fd: number): void {
  libc().close(fd)
}

const SIOCSIFTXQLEN = 0x8943

/**
 * Sets a device's transmit queue length through `fd` (any socket in the device's namespace).
 * For a TUN device this is the ring packets wait in until the reader takes them.
 */
export function setTxQueueLen(fd: number, name: string, len: number): void {
  const ifr = Buffer.alloc(40)
  ifr.write(name, 0, 'utf8')
  ifr.writeInt32LE(len, 16)
  const c = libc()
  if (c.ioctl(fd, SIOCSIFTXQLEN, ifr) < 0) throw new UdpIoError(`set txqueuelen ${name}`, errnoName(c.errno()))
}
