/**
 * The `weft` operator CLI (built bin/weft) against a real etcd: config get/set with validation
 * and the backend-change guard, the lease table, reservations.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { etcdSkipReason, startEtcd, type EtcdServer } from '../helpers/etcd-server.ts'
import { WEFT } from '../helpers/weftd.ts'

const skip = etcdSkipReason()
let etcd: EtcdServer | undefined
let dir = ''

before(async () => {
  if (skip) return
  etcd = await startEtcd()
  dir = mkdtempSync(join(tmpdir(), 'weft-cli-'))
})
after(async () => {
  await etcd?.destroy()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

function weft(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [WEFT, ...args, `--etcd-endpoints=${etcd!.endpoint}`, '--etcd-prefix=/cli'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })
  return { code: r.status, out: r.stdout, err: r.stderr }
}
function etcdctl(...args: string[]): string {
  return spawnSync('etcdctl', [`--endpoints=${etcd!.endpoint}`, ...args], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } }).stdout
}
function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

test('config set validates before writing; config get prints what was stored', { skip }, () => {
  const missing = weft('config', 'get')
  assert.equal(missing.code, 1)
  assert.match(missing.err, /no network config at \/cli\/config/)
  const bad = weft('config', 'set', file('bad.json', '{"Network":"10.5.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}'))
  assert.equal(bad.code, 2)
  assert.match(bad.err, /SubnetLen/)
  assert.equal(etcdctl('get', '/cli/config', '--print-value-only'), '', 'nothing written')
  const typo = weft('config', 'set', file('typo.json', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNl":2}}'))
  assert.equal(typo.code, 2)
  assert.match(typo.err, /unknown key "vnl"; expected one of Type, VNI, Port/i)
  const good = '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}'
  const ok = weft('config', 'set', file('good.json', good))
  assert.equal(ok.code, 0, ok.err)
  assert.equal(weft('config', 'get').out, `${good}\n`)
})

test('reserve, the lease table, the backend guard and unreserve', { skip }, () => {
  assert.equal(weft('config', 'set', file('c.json', '{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}')).code, 0)
  const reserved = weft('reserve', '10.5.7.0/24', '192.168.9.9')
  assert.equal(reserved.code, 0, reserved.err)
  // A reservation is a key without an etcd lease, in flannel's value format.
  const raw = JSON.parse(etcdctl('get', '/cli/subnets/10.5.7.0-24', '-w', 'json')) as { kvs: Array<{ value: string; lease?: number }> }
  assert.equal(Buffer.from(raw.kvs[0]!.value, 'base64').toString(), '{"PublicIP":"192.168.9.9","PublicIPv6":null}')
  assert.equal(raw.kvs[0]!.lease ?? 0, 0)
  assert.match(weft('reserve', '10.5.7.0/24', '192.168.9.10').err, /overlaps the existing reservation 10\.5\.7\.0-24/)
  assert.match(weft('reserve', '10.6.1.0/24', '192.168.9.10').err, /not a \/24 subnet inside the network/)
  assert.match(weft('reserve', '10.5.8.1/24', '192.168.9.10').err, /host bits set; did you mean 10\.5\.8\.0\/24/)

  // A running host's lease (with TTL), as flannel writes it for vxlan.
  const grant = etcdctl('lease', 'grant', '3600')
  const leaseId = /lease ([0-9a-f]+) granted/.exec(grant)![1]!
  etcdctl('put', '--lease', leaseId, '/cli/subnets/10.5.3.0-24', '{"PublicIP":"192.168.9.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}')
  etcdctl('put', '/cli/subnets/garbage', 'not json')
  const table = weft('leases')
  assert.equal(table.code, 0, table.err)
  const lines = table.out.trim().split('\n')
  assert.match(lines[0]!, /^SUBNET\s+PUBLIC IP\s+BACKEND\s+VTEP MAC\s+EXPIRES IN$/)
  assert.match(table.out, /10\.5\.3\.0\/24\s+192\.168\.9\.3\s+vxlan\s+c6:d2:32:6f:8f:44\s+(59m\d\ds|1h00m)/)
  assert.match(table.out, /10\.5\.7\.0\/24\s+192\.168\.9\.9\s+\(none\)\s+-\s+reserved/)
  const json = JSON.parse(weft('leases', '--json').out) as Array<{ subnet: string; expiresIn: number | null }>
  assert.deepEqual(json.map((r) => r.subnet).filter((s) => s.startsWith('10.')), ['10.5.3.0/24', '10.5.7.0/24'])

  // The backend is fixed once set.
  const change = weft('config', 'set', file('hg.json', '{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}'))
  assert.equal(change.code, 2)
  assert.match(change.err, /Backend\.Type host-gw differs from the backend of existing leases \(vxlan\)/)
  assert.equal(weft('config', 'set', file('hg.json', '{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}'), '--force').code, 0)

  assert.match(weft('unreserve', '10.5.3.0/24').err, /lease of a running host, not a reservation/)
  const removed = weft('unreserve', '10.5.7.0/24')
  assert.equal(removed.code, 0, removed.err)
  assert.equal(etcdctl('get', '/cli/subnets/10.5.7.0-24', '--print-value-only'), '')
})

test('usage errors exit 2', { skip }, () => {
  const unknown = weft('frobnicate')
  assert.equal(unknown.code, 2)
  assert.match(unknown.err, /unknown command/)
  const flag = weft('leases', '--ip-masq')
  assert.equal(flag.code, 2)
  assert.match(flag.err, /--ip-masq: unknown flag/)
})
