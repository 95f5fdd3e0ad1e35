import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runDaemon, subnetEnvText, type DaemonParts, type SubnetEnvInput } from '../../../src/daemon/daemon.ts'
import { MemoryRegistry } from '../../../src/subnet/etcd/memory-registry.ts'
import { EtcdSubnetManager } from '../../../src/subnet/etcd/etcd-subnet-manager.ts'
import { MemoryKernel } from '../../../src/kernel/memory/memory-kernel.ts'
import { MemoryLogger } from '../../../src/log/logger.ts'
import { systemClock } from '../../../src/util/clock.ts'
import { backendRegistry } from '../../../src/backend/registry.ts'
import { parseNetworkConfig } from '../../../src/config/parse-network-config.ts'
import { parseIp } from '../../../src/ip/ip.ts'
import { WeftError, isWeftError } from '../../../src/errors.ts'
import { until } from '../../helpers/wait.ts'

const PREFIX = '/coreos.com/network'

function setup(configJson?: string) {
  const registry = new MemoryRegistry({ clock: systemClock })
  if (configJson) registry.rawPut(`${PREFIX}/config`, configJson)
  const logger = new MemoryLogger()
  const subnetManager = new EtcdSubnetManager({ registry, prefix: PREFIX, logger, clock: systemClock, parseConfig: (json) => parseNetworkConfig(json, backendRegistry).config })
  const written: string[] = []
  let readyCalls = 0
  const parts: DaemonParts = {
    subnetManager,
    kernel: new MemoryKernel(),
    logger,
    clock: systemClock,
    backendDefinition: (type) => backendRegistry[type],
    selectInterface: async () => ({ name: 'eth0', index: 2, mtu: 1500, ifaceAddr: parseIp('10.200.0.1'), extAddr: parseIp('10.200.0.1') }),
    writeSubnetEnv: async (input: SubnetEnvInput) => { written.push(subnetEnvText(input)) },
    onReady: () => { readyCalls++ },
  }
  return { registry, logger, parts, written, ready: () => readyCalls }
}


const settings = { subnetFile: '/unused', renewMarginMinutes: 60, ipMasq: false, configRetryMs: 20 }

test('alloc: acquires a lease, writes subnet.env, marks ready, stops cleanly on abort', async () => {
  const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
  const ac = new AbortController()
  const running = runDaemon(settings, bed.parts, ac.signal)
  await until(() => bed.written.length === 1)
  const env = bed.written[0] as string
  assert.match(env, /^FLANNEL_NETWORK=10\.5\.0\.0\/16\nFLANNEL_SUBNET=10\.5\.\d+\.1\/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n$/)
  assert.equal(bed.ready(), 1)
  const listing = await bed.registry.listSubnets(PREFIX, ac.signal)
  assert.equal(listing.entries.length, 1)
  assert.equal(listing.entries[0]?.value, '{"PublicIP":"10.200.0.1","PublicIPv6":null}')
  ac.abort()
  assert.equal(await running, 'stopped')
})

test('the config is retried until it appears', async () => {
  const bed = setup()
  const ac = new AbortController()
  const running = runDaemon(settings, bed.parts, ac.signal)
  await new Promise((r) => setTimeout(r, 80))
  assert.equal(bed.written.length, 0)
  assert.equal(bed.logger.find('failed to retrieve network config; retrying').length, 1, 'the same error is logged once')
  bed.registry.rawPut(`${PREFIX}/config`, '{"Network":"10.6.0.0/16","Backend":{"Type":"alloc"}}')
  await until(() => bed.written.length === 1)
  assert.match(bed.written[0] as string, /FLANNEL_NETWORK=10\.6\.0\.0\/16/)
  ac.abort()
  assert.equal(await running, 'stopped')
})

test('deleting our lease key: the daemon re-creates it and keeps running', async () => {
  const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
  const ac = new AbortController()
  const running = runDaemon(settings, bed.parts, ac.signal)
  await until(() => bed.written.length === 1)
  const listing = await bed.registry.listSubnets(PREFIX, new AbortController().signal)
  const key = listing.entries[0]?.key as string
  await bed.registry.deleteSubnet(PREFIX, key, new AbortController().signal)
  await until(() => (bed.registry.calls['replaceSubnet'] ?? 0) === 1)
  const back = await bed.registry.getSubnet(PREFIX, key, new AbortController().signal)
  assert.equal(back?.value, listing.entries[0]?.value)
  ac.abort()
  assert.equal(await running, 'stopped')
})

test('a backend that cannot load fails with its error and writes nothing', async () => {
  const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
  const parts: DaemonParts = {
    ...bed.parts,
    backendDefinition: () => ({ type: 'alloc', parseOptions: () => ({}), load: () => Promise.reject(new WeftError('BACKEND_UNSUPPORTED', 'backend alloc is not available here')), hotCode: false }),
  }
  await assert.rejects(runDaemon(settings, parts, new AbortController().signal), (err) => isWeftError(err, 'BACKEND_UNSUPPORTED'))
  assert.equal(bed.written.length, 0)
})

test('the runtime is tuned for the chosen backend before it loads', async () => {
  const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
  const order: string[] = []
  const parts: DaemonParts = {
    ...bed.parts,
    backendDefinition: (type) => {
      const real = bed.parts.backendDefinition(type)
      return real && { ...real, load: () => { order.push('load'); return real.load() } }
    },
    tuneRuntime: (definition) => order.push(`tune ${definition.type} hotCode=${definition.hotCode}`),
  }
  const ac = new AbortController()
  const running = runDaemon(settings, parts, ac.signal)
  await until(() => bed.written.length === 1)
  assert.deepEqual(order, ['tune alloc hotCode=false', 'load'])
  ac.abort()
  assert.equal(await running, 'stopped')
})

test('with masquerade or forward rules, the rules start once the lease is stored and are applied before subnet.env is written', async () => {
  const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
  const order: string[] = []
  let rulesLease: string | undefined
  const parts: DaemonParts = {
    ...bed.parts,
    trafficRules: async (_config, lease, signal) => {
      const stored = (await bed.registry.listSubnets(PREFIX, signal)).entries.length
      order.push(`rules started (${stored} lease stored)`)
      rulesLease = lease.subnet && `${lease.subnet.addr}/${lease.subnet.prefix}`
      order.push('rules applied')
      return { running: new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })) }
    },
    writeSubnetEnv: async (input) => { order.push('subnet.env'); bed.written.push(subnetEnvText(input)) },
  }
  const ac = new AbortController()
  const running = runDaemon(settings, parts, ac.signal)
  await until(() => bed.written.length === 1)
  assert.deepEqual(order, ['rules started (1 lease stored)', 'rules applied', 'subnet.env'])
  const listing = await bed.registry.listSubnets(PREFIX, ac.signal)
  const key = listing.entries[0]?.key as string
  assert.ok(rulesLease !== undefined && key.endsWith('-24'), 'the rules got the acquired lease')
  ac.abort()
  assert.equal(await running, 'stopped')
})

test('a failing registration fails the daemon and starts no traffic rules', async () => {
  const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}')
  let rulesStarted = false
  const parts: DaemonParts = {
    ...bed.parts,
    backendDefinition: () => ({ type: 'udp', parseOptions: () => ({}), load: async () => () => ({ type: 'udp', registerNetwork: async () => { throw new Error('no tun here') } }), hotCode: true }),
    trafficRules: async () => {
      rulesStarted = true
      return { running: Promise.resolve() }
    },
  }
  await assert.rejects(runDaemon(settings, parts, new AbortController().signal), /no tun here/)
  assert.equal(rulesStarted, false)
})

test('without masquerade or forward rules, subnet.env is written before the firewall work starts', async () => {
  const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
  const order: string[] = []
  const parts: DaemonParts = {
    ...bed.parts,
    trafficRules: async (_config, _lease, signal) => {
      order.push('rules started')
      return { running: new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })) }
    },
    writeSubnetEnv: async (input) => { order.push('subnet.env'); bed.written.push(subnetEnvText(input)) },
  }
  const ac = new AbortController()
  const running = runDaemon({ ...settings, trafficRulesFirst: false }, parts, ac.signal)
  await until(() => order.length === 2)
  assert.deepEqual(order, ['subnet.env', 'rules started'])
  ac.abort()
  assert.equal(await running, 'stopped')
})

// A stop that arrives while start-up is still under way must end the daemon, not leave tasks
// waiting for an abort event that fired before they listened (seen: weftd ignoring SIGTERM
// sent the moment subnet.env appeared).
for (const moment of ['selectInterface', 'writeSubnetEnv'] as const) {
  test(`a stop during ${moment} ends the daemon with 'stopped'`, async () => {
    const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
    const ac = new AbortController()
    const parts: DaemonParts = {
      ...bed.parts,
      selectInterface: async (families) => {
        if (moment === 'selectInterface') ac.abort()
        return bed.parts.selectInterface(families)
      },
      writeSubnetEnv: async (input) => {
        bed.written.push(subnetEnvText(input))
        if (moment === 'writeSubnetEnv') ac.abort()
      },
    }
    const outcome = await Promise.race([runDaemon(settings, parts, ac.signal), new Promise((r) => setTimeout(() => r('still running after 2 s'), 2000))])
    assert.equal(outcome, 'stopped')
  })
}

test('the data path runs while the rules are applied; its failure meanwhile fails the daemon, not the process', async () => {
  const bed = setup('{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}')
  const order: string[] = []
  let unhandled: unknown
  const onUnhandled = (reason: unknown): void => { unhandled = reason }
  process.on('unhandledRejection', onUnhandled)
  try {
    const parts: DaemonParts = {
      ...bed.parts,
      backendDefinition: () => ({
        type: 'alloc', parseOptions: () => ({}), hotCode: false,
        load: async () => (_o, deps) => ({
          type: 'alloc',
          registerNetwork: async (config, signal) => {
            const lease = await deps.subnetManager.acquireLease(config, { backendType: '' }, signal)
            return { lease, mtu: 1500, run: async () => { order.push('run'); throw new WeftError('KERNEL_OP_FAILED', 'device vanished') } }
          },
        }),
      }),
      trafficRules: async (_config, _lease, signal) => {
        await new Promise((r) => setTimeout(r, 50)) // rule detection takes a while
        order.push('rules applied')
        return { running: new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })) }
      },
    }
    await assert.rejects(runDaemon(settings, parts, new AbortController().signal), /device vanished/)
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(order, ['run', 'rules applied'])
    assert.equal(unhandled, undefined, 'no unhandled rejection')
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
})
