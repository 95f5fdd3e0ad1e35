/**
 * EtcdRegistry against etcd with client-certificate TLS, and with username/password auth
 * (tokens that expire after 2 s, so the client must re-authenticate).
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { etcdSkipReason, startEtcd, type EtcdServer } from '../helpers/etcd-server.ts'
import { EtcdRegistry } from '../../src/subnet/etcd/etcd-registry.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { isWeftError } from '../../src/errors.ts'
import { issueTestCert, makeTestCa } from '../helpers/test-certs.ts'

const skip = etcdSkipReason()

const P = '/coreos.com/network'
const dir = mkdtempSync(join(tmpdir(), 'weft-etcd-tls-'))
const f = (name: string): string => join(dir, name)
const servers: EtcdServer[] = []
const signal = new AbortController().signal

const issue = (name: string, cn: string, ext: string): void => issueTestCert(dir, name, `/CN=${cn}`, ext)

before(() => {
  if (skip) return
  makeTestCa(dir)
  // etcd 3.4's JSON gateway dials its own gRPC port with the server certificate: it needs clientAuth too.
  issue('server', 'etcd', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n')
  issue('client', 'weft', 'extendedKeyUsage=clientAuth\n')
})
after(async () => {
  for (const s of servers) await s.destroy()
  rmSync(dir, { recursive: true, force: true })
})

test('client-certificate TLS: works with key+cert+CA, refused without the client certificate', { skip }, async () => {
  const etcd = await startEtcd({
    tls: { certFile: f('server.crt'), keyFile: f('server.key'), caFile: f('ca.crt'), clientCertAuth: true, clientCertFile: f('client.crt'), clientKeyFile: f('client.key') },
  })
  servers.push(etcd)
  assert.match(etcd.endpoint, /^https:/)
  const good = new EtcdRegistry({ endpoints: [etcd.endpoint], keyFile: f('client.key'), certFile: f('client.crt'), caFile: f('ca.crt'), logger: new MemoryLogger() })
  const logger = new MemoryLogger()
  const noCert = new EtcdRegistry({ endpoints: [etcd.endpoint], certFile: f('client.crt'), caFile: f('ca.crt'), logger, timeoutMs: 2000 })
  try {
    await good.putConfig(P, '{"Network":"10.5.0.0/16"}', signal)
    assert.equal(await good.getConfig(P, signal), '{"Network":"10.5.0.0/16"}')
    const rev = (await good.listSubnets(P, signal)).revision
    const ac = new AbortController()
    const seen = (async () => {
      for await (const b of good.watchSubnets(P, String(BigInt(rev) + 1n), ac.signal)) return b.changes.map((c) => c.key)
      return []
    })()
    await good.createSubnet(P, '10.5.1.0-24', '{"PublicIP":"1.1.1.1","PublicIPv6":null}', 60, signal)
    assert.deepEqual(await seen, ['10.5.1.0-24'])
    ac.abort()
    assert.equal(logger.find('etcd TLS needs both a key and a certificate; client certificate not used').length, 1)
    await assert.rejects(noCert.getConfig(P, signal), (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE'))
  } finally {
    await good.close()
    await noCert.close()
  }
})

test('username/password: token sent on calls and watches, re-authenticated after expiry', { skip }, async () => {
  const etcd = await startEtcd({ extraArgs: ['--auth-token-ttl', '2'] })
  servers.push(etcd)
  const ctl = (...args: string[]): string =>
    execFileSync('etcdctl', [`--endpoints=${etcd.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' })
  ctl('user', 'add', 'root:s3cret')
  ctl('auth', 'enable')
  const authed = new EtcdRegistry({ endpoints: [etcd.endpoint], username: 'root', password: 's3cret', logger: new MemoryLogger() })
  const anonymous = new EtcdRegistry({ endpoints: [etcd.endpoint], logger: new MemoryLogger() })
  const wrong = new EtcdRegistry({ endpoints: [etcd.endpoint], username: 'root', password: 'nope', logger: new MemoryLogger() })
  try {
    await authed.putConfig(P, '{"Network":"10.6.0.0/16"}', signal)
    assert.equal(ctl('--user', 'root:s3cret', 'get', '--print-value-only', `${P}/config`).trim(), '{"Network":"10.6.0.0/16"}')
    await new Promise((r) => setTimeout(r, 3500)) // the token expires
    assert.equal(await authed.getConfig(P, signal), '{"Network":"10.6.0.0/16"}')
    const rev = (await authed.listSubnets(P, signal)).revision
    const ac = new AbortController()
    const seen = (async () => {
      for await (const b of authed.watchSubnets(P, String(BigInt(rev) + 1n), ac.signal)) return b.changes.map((c) => c.key)
      return []
    })()
    await authed.createSubnet(P, '10.6.1.0-24', '{"PublicIP":"1.1.1.1","PublicIPv6":null}', 60, signal)
    assert.deepEqual(await seen, ['10.6.1.0-24'])
    ac.abort()
    await assert.rejects(anonymous.getConfig(P, signal), (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE') && /user name is empty|permission denied/.test(err.message))
    await assert.rejects(wrong.getConfig(P, signal), (err: unknown) => isWeftError(err, 'REGISTRY_UNAVAILABLE') && /authentication failed/.test(err.message))
  } finally {
    await authed.close()
    await anonymous.close()
    await wrong.close()
  }
})

test('TLS options: unreadable files are a USAGE error naming the flag; files with http endpoints warn', { skip }, () => {
  assert.throws(() => new EtcdRegistry({ endpoints: ['https://127.0.0.1:1'], caFile: f('missing.crt'), logger: new MemoryLogger() }),
    (err: unknown) => isWeftError(err, 'USAGE') && err.message.startsWith('etcd-cafile: cannot read'))
  const logger = new MemoryLogger()
  new EtcdRegistry({ endpoints: ['http://127.0.0.1:1'], caFile: f('ca.crt'), logger })
  assert.equal(logger.find('etcd TLS files are set but every endpoint uses http://; TLS not used').length, 1)
})
