import { test } from 'node:test'
import assert from 'node:assert/strict'
import { alloc } from '../../../../src/backend/alloc/alloc.ts'
import { parseNetworkConfig } from '../../../../src/config/parse-network-config.ts'
import { backendRegistry } from '../../../../src/backend/registry.ts'
import { parseCidr, parseIp } from '../../../../src/ip/ip.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import type { Lease, LeaseAttrs } from '../../../../src/lease/lease.ts'
import type { SubnetManager } from '../../../../src/subnet/subnet-manager.ts'
import type { BackendDeps, ExternalInterface } from '../../../../src/backend/backend.ts'
import type { Kernel } from '../../../../src/kernel/kernel.ts'

function fakeManager(calls: LeaseAttrs[]): SubnetManager {
  const unused = () => { throw new Error('unused') }
  return {
    name: 'fake',
    getNetworkConfig: unused,
    async acquireLease(_config, attrs, signal) {
      signal.throwIfAborted()
      calls.push(attrs)
      return { subnet: parseCidr('10.5.72.0/24')!, attrs, expiration: 1 }
    },
    renewLease: unused,
    listLeases: unused,
    watchLeases: unused,
    watchLease: unused,
    close: async () => {},
  }
}

function deps(calls: LeaseAttrs[], extIface: Partial<ExternalInterface> = {}): BackendDeps {
  return {
    subnetManager: fakeManager(calls),
    extIface: { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: parseIp('192.0.2.10')!, extAddr: parseIp('198.51.100.7')!, ...extIface },
    kernel: {} as Kernel, // alloc must not touch the kernel: any call would throw
    logger: new MemoryLogger(),
    clock: new FakeClock(),
  }
}

const config = parseNetworkConfig('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}', backendRegistry).config

test('registerNetwork acquires a lease with the public IP and no backend type; MTU is the interface MTU', async () => {
  const calls: LeaseAttrs[] = []
  const backend = alloc({}, deps(calls, { mtu: 9001 }))
  assert.equal(backend.type, 'alloc')
  const network = await backend.registerNetwork(config, new AbortController().signal)
  assert.deepEqual(calls, [{ publicIP: parseIp('198.51.100.7'), backendType: '' }])
  assert.equal(network.mtu, 9001)
  assert.deepEqual((network.lease as Lease).subnet, parseCidr('10.5.72.0/24'))
})

test('dual stack passes the IPv6 public address too', async () => {
  const calls: LeaseAttrs[] = []
  const dual = parseNetworkConfig('{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"alloc"}}', backendRegistry).config
  await alloc({}, deps(calls, { extV6Addr: parseIp('2001:db8::7')! })).registerNetwork(dual, new AbortController().signal)
  assert.deepEqual(calls, [{ publicIP: parseIp('198.51.100.7'), publicIPv6: parseIp('2001:db8::7'), backendType: '' }])
})

test('run resolves only after abort', async () => {
  const network = await alloc({}, deps([])).registerNetwork(config, new AbortController().signal)
  const ac = new AbortController()
  let done = false
  const running = network.run(ac.signal).then(() => { done = true })
  await new Promise((r) => setImmediate(r))
  assert.equal(done, false)
  ac.abort()
  await running
  assert.equal(done, true)
  await network.run(AbortSignal.abort()) // already aborted: resolves at once
})

test('registerNetwork honours an aborted signal', async () => {
  await assert.rejects(alloc({}, deps([])).registerNetwork(config, AbortSignal.abort()), { name: 'AbortError' })
})
