/** The Registry contract (test/unit/subnet/etcd/registry-contract.ts) against a real etcd. */
import { before, after } from 'node:test'
import { execFileSync } from 'node:child_process'
import { etcdSkipReason, startEtcd, type EtcdServer } from '../helpers/etcd-server.ts'
import { EtcdRegistry } from '../../src/subnet/etcd/etcd-registry.ts'
import { silentLogger } from '../../src/log/logger.ts'
import { registryContract } from '../unit/subnet/etcd/registry-contract.ts'

const skip = etcdSkipReason()

let etcd: EtcdServer
let registry: EtcdRegistry
before(async () => {
  if (skip) return
  etcd = await startEtcd()
  registry = new EtcdRegistry({ endpoints: [etcd.endpoint], logger: silentLogger })
})
after(async () => {
  await registry?.close()
  await etcd?.destroy()
})

const etcdctl = (...args: string[]): string =>
  execFileSync('etcdctl', [`--endpoints=${etcd.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' })

registryContract('EtcdRegistry', async () => ({
  registry,
  rawPut: async (key, value, ttl) => {
    if (ttl === undefined) etcdctl('put', key, value)
    else etcdctl('put', '--lease', etcdctl('lease', 'grant', String(ttl)).split(' ')[1] as string, key, value)
  },
  compact: () => etcd.compact(),
}), { skip })
