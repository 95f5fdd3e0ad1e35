/**
 * TUN devices: open /dev/net/tun non-blocking and attach with TUNSETIFF (IFF_TUN|IFF_NO_PI, plus
 * IFF_MULTI_QUEUE when asked, one fd per queue). Closing every fd removes the device.
 */
import { closeSync, constants, openSync } from 'node:fs'
import { errnoName, libc } from './libc.ts'

const TUNSETIFF = 0x400454ca
const IFF_TUN = 0x0001
const IFF_NO_PI = 0x1000
const IFF_MULTI_QUEUE = 0x0100
const IFNAMSIZ = 16

export class TunError extends Error {
  constructor(readonly errno: string) {
    super(errno)
    this.name = 'TunError'
  }
}

/** Opens `queues` fds attached to TUN device `name` (created when missing). Synchronous. */
export function openTunFds(name: string, multiQueue: boolean, queues: number): number[] {
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new TunError('EINVAL')
  const c = libc()
  const fds: number[] = []
  try {
    for (let i = 0; i < (multiQueue ? queues : 1); i++) {
      let fd: number
      try {
        fd = openSync('/dev/net/tun', constants.O_RDWR | constants.O_NONBLOCK)
      } catch (err) {
        throw new TunError((err as NodeJS.ErrnoException).code ?? 'EIO')
      }
      fds.push(fd)
      const ifr = Buffer.alloc(40)
      ifr.write(name, 0, 'utf8')
      ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0), IFNAMSIZ)
      if (c.ioctl(fd, TUNSETIFF, ifr) < 0) throw new TunError(errnoName(c.errno()))
    }
    return fds
  } catch (err) {
    for (const fd of fds) closeSync(fd)
    throw err
  }
}
