import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr, parseIp, type IpAddr, type IpNet } from '../../src/ip/ip.ts'
import { isKernelErrno } from '../../src/kernel/kernel-error.ts'
import { MemoryKernel } from '../../src/kernel/memory/memory-kernel.ts'
import { kernelContract } from './kernel-contract.ts'

kernelContract('MemoryKernel', async () => {
  const kernel = new MemoryKernel()
  return { kernel, teardown: async () => kernel.close() }
})

const ip = (t: string): IpAddr => parseIp(t) as IpAddr
const net = (t: string): IpNet => parseCidr(t) as IpNet

test('MemoryKernel: failNext fails the next call only, leaves the tables alone and is logged', async () => {
  const k = new MemoryKernel()
  await k.setLink(1, { up: true })
  k.failNext('replaceRoute', 'EBUSY')
  await assert.rejects(k.replaceRoute({ dst: net('10.9.0.0/16'), type: 'blackhole' }), (e) => isKernelErrno(e, 'EBUSY'))
  assert.deepEqual(k.snapshot().routes.filter((r) => r.type === 'blackhole'), [])
  await k.replaceRoute({ dst: net('10.9.0.0/16'), type: 'blackhole' })
  assert.equal(k.snapshot().routes.filter((r) => r.type === 'blackhole').length, 1)
  assert.deepEqual(k.calls('replaceRoute').map((o) => o.errno), ['EBUSY', undefined])
})

test('MemoryKernel: ops log records arguments as values and errors by errno', async () => {
  const k = new MemoryKernel()
  const route = { dst: net('10.5.2.0/24'), index: 4242 }
  await assert.rejects(k.replaceRoute(route))
  assert.deepEqual(k.ops, [{ op: 'replaceRoute', args: [route], errno: 'ENODEV' }])
})

test('MemoryKernel: snapshot is a deep copy in a stable order', async () => {
  const a = new MemoryKernel()
  const b = new MemoryKernel()
  for (const k of [a, b]) {
    await k.setLink(1, { up: true })
    await k.createVxlan({ name: 'flannel.1', vni: 1, port: 0, learning: false, gbp: false, mac: '0e:a0:00:00:00:01' })
    await k.setLink(2, { up: true })
  }
  await a.replaceNeigh({ index: 2, ip: ip('10.5.2.0'), mac: '0e:a0:00:00:00:02' })
  await a.replaceNeigh({ index: 2, ip: ip('10.5.3.0'), mac: '0e:a0:00:00:00:03' })
  await b.replaceNeigh({ index: 2, ip: ip('10.5.3.0'), mac: '0e:a0:00:00:00:03' })
  await b.replaceNeigh({ index: 2, ip: ip('10.5.2.0'), mac: '0e:a0:00:00:00:02' })
  assert.deepEqual(a.snapshot(), b.snapshot())
  const snap = a.snapshot()
  await a.deleteNeigh({ index: 2, ip: ip('10.5.2.0') })
  assert.equal(snap.neighs.length, 2)
})

test('MemoryKernel: error messages name the operation, the object and the errno', async () => {
  const k = new MemoryKernel()
  await k.setLink(1, { up: true })
  const l = await k.createVxlan({ name: 'flannel.1', vni: 1, port: 0, learning: false, gbp: false })
  await k.setLink(l.index, { up: true })
  await assert.rejects(k.replaceRoute({ dst: net('10.5.3.0/24'), gateway: ip('10.5.3.0'), index: l.index }), {
    message: 'replace route 10.5.3.0/24 via 10.5.3.0 dev flannel.1: ENETUNREACH',
  })
})

test('MemoryKernel: openTun creates a tun link that close() removes', async () => {
  const k = new MemoryKernel()
  const tun = await k.openTun({ name: 'flannel0', multiQueue: true, queues: 2 })
  assert.equal(tun.fds.length, 2)
  assert.equal((await k.getLink('flannel0'))?.kind, 'tun')
  tun.close()
  assert.equal(await k.getLink('flannel0'), undefined)
})

test('isKernelNotFound matches each delete-of-missing errno', async () => {
  const { isKernelNotFound } = await import('../../src/kernel/kernel-error.ts')
  const k = new MemoryKernel()
  const failures = await Promise.allSettled([
    k.deleteLink(4242),
    k.deleteRoute({ dst: net('10.9.0.0/16') }),
    k.deleteAddr({ index: 1, ip: ip('10.9.0.1'), prefix: 32 }),
    k.deleteNeigh({ index: 1, ip: ip('10.9.0.1') }),
  ])
  assert.deepEqual(failures.map((f) => f.status === 'rejected' && isKernelNotFound(f.reason)), [true, true, true, true])
  await assert.rejects(k.createVxlan({ name: 'lo', vni: 1, port: 0, learning: false, gbp: false }), (e) => !isKernelNotFound(e))
})
