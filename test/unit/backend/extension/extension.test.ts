/**
 * extension backend: flannel's variables, stdin and BackendData, with real exec'd commands (no
 * shell between weftd and the program), failure handling, and the option parser.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { extension } from '../../../../src/backend/extension/extension.ts'
import { parseExtensionOptions, splitCommand } from '../../../../src/backend/extension/extension-options.ts'
import { expandVars, runCommand } from '../../../../src/backend/extension/command.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { config, FakeSubnetManager, host, lease, until } from '../backend-fixtures.ts'

const dir = mkdtempSync(join(tmpdir(), 'weft-ext-unit-'))
after(() => rmSync(dir, { recursive: true, force: true }))
// Records argv, the flannel variables and stdin of each call, one JSON line per call.
const RECORD = join(dir, 'record.js')
writeFileSync(RECORD, `
const fs = require('node:fs')
const stdin = fs.readFileSync(0, 'utf8')
const pick = ['NETWORK', 'SUBNET', 'IPV6SUBNET', 'PUBLIC_IP', 'PUBLIC_IPV6', 'WEFT_TEST_INHERITED']
const env = Object.fromEntries(pick.filter((k) => k in process.env).map((k) => [k, process.env[k]]))
fs.appendFileSync(process.argv[2], JSON.stringify({ argv: process.argv.slice(3), env, stdin }) + '\\n')
if (process.argv[3] === 'print') process.stdout.write('  {"key":"value"}\\n')
if (process.argv[3] === 'fail') { process.stderr.write('no route for you'); process.exit(3) }
`)
const calls = (file: string): Array<{ argv: string[]; env: Record<string, string>; stdin: string }> =>
  readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as never)
const cmd = (log: string, ...args: string[]): string => [process.execPath, RECORD, log, ...args].join(' ')

test('expandVars follows Go os.Expand', () => {
  const env: Record<string, string> = { SUBNET: '10.5.3.0/24', A: 'x', '1': 'one' }
  const look = (n: string): string => env[n] ?? ''
  assert.equal(expandVars('via=$SUBNET', look), 'via=10.5.3.0/24')
  assert.equal(expandVars('${SUBNET}-tail', look), '10.5.3.0/24-tail')
  assert.equal(expandVars('$A$A $MISSING.', look), 'xx .')
  assert.equal(expandVars('$1x ${1}', look), 'onex one')
  assert.equal(expandVars('cost $', look), 'cost $')
  assert.equal(expandVars('a$%b', look), 'a$%b')
  assert.equal(expandVars('bad${}x ${open', look), 'badx open')
})

test('splitCommand splits on runs of white space like strings.Fields', () => {
  assert.deepEqual(splitCommand('  ip  route\tadd $SUBNET\nvia $PUBLIC_IP '), ['ip', 'route', 'add', '$SUBNET', 'via', '$PUBLIC_IP'])
})

test('options: strings only, unknown keys named', () => {
  assert.deepEqual(parseExtensionOptions({}), { preStartupCommand: [], postStartupCommand: [], subnetAddCommand: [], subnetRemoveCommand: [] })
  assert.throws(() => parseExtensionOptions({ subnetaddcommand: ['ip', 'route'] }), /Backend\.SubnetAddCommand: must be a string .*got array/)
  assert.throws(() => parseExtensionOptions({ subnetaddcomand: 'x' }), /unknown key "subnetaddcomand"; expected one of Type, PreStartupCommand/)
})

test('a variable value with spaces stays one argument (no shell)', async () => {
  const log = join(dir, 'spaces.log')
  const r = await runCommand(splitCommand(cmd(log, '$SUBNET', '$(id)')), { vars: { SUBNET: 'a b;c' }, stdin: 'in', timeoutMs: 10_000, signal: new AbortController().signal })
  assert.equal(r.code, 0)
  assert.deepEqual(calls(log)[0], { argv: ['a b;c', '$(id)'], env: { SUBNET: 'a b;c' }, stdin: 'in\n' })
})

test('a command past its time limit is stopped and reported', async () => {
  const r = await runCommand(['/bin/sleep', '30'], { vars: {}, stdin: '', timeoutMs: 100, signal: new AbortController().signal })
  assert.equal(r.signal, 'SIGTERM')
  assert.match(r.error ?? '', /timed out after 100 ms/)
})

test('startup: PreStartupCommand stdout is BackendData; PostStartupCommand gets flannel variables', async () => {
  const log = join(dir, 'startup.log')
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  process.env.WEFT_TEST_INHERITED = 'yes'
  const options = parseExtensionOptions({ prestartupcommand: cmd(log, 'print'), poststartupcommand: cmd(log, 'post', '$SUBNET') })
  const backend = extension(options, { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  const network = await backend.registerNetwork(config({ type: 'extension' }), new AbortController().signal)
  delete process.env.WEFT_TEST_INHERITED
  assert.equal(sm.acquired[0]?.backendData, '{"key":"value"}', 'trimmed stdout, stored as a JSON string')
  assert.equal(network.mtu, 1500)
  const [pre, post] = calls(log)
  assert.deepEqual(pre?.env, { WEFT_TEST_INHERITED: 'yes' })
  assert.equal(pre?.stdin, '\n')
  assert.deepEqual(post, {
    argv: ['post', '10.5.1.0/24'],
    env: { NETWORK: '10.5.0.0/16', SUBNET: '10.5.1.0/24', IPV6SUBNET: '', PUBLIC_IP: '192.168.1.2', PUBLIC_IPV6: '', WEFT_TEST_INHERITED: 'yes' },
    stdin: '\n',
  })
})

test('startup: a failing PreStartupCommand fails registration with its status and stderr, before any lease', async () => {
  const log = join(dir, 'prefail.log')
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  const backend = extension(parseExtensionOptions({ prestartupcommand: cmd(log, 'fail') }), { subnetManager: sm, extIface, kernel, logger: new MemoryLogger(), clock: new FakeClock() })
  await assert.rejects(backend.registerNetwork(config({ type: 'extension' }), new AbortController().signal), (err: unknown) => {
    assert.ok(isWeftError(err, 'BACKEND_UNSUPPORTED'))
    assert.match((err as Error).message, /PreStartupCommand .* failed: exit status 3; stderr: no route for you/)
    return true
  })
  assert.equal(sm.acquired.length, 0)
})

test('subnet commands: SUBNET, PUBLIC_IP and BackendData on stdin; failures logged, the watch goes on', async () => {
  const log = join(dir, 'peers.log')
  const { kernel, extIface } = await host({ v4: '192.168.1.2/24' })
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  const logger = new MemoryLogger()
  const options = parseExtensionOptions({ subnetaddcommand: cmd(log, '$ADD_MODE', 'add'), subnetremovecommand: cmd(log, 'remove', '${SUBNET}') })
  process.env.ADD_MODE = 'fail'
  const backend = extension(options, { subnetManager: sm, extIface, kernel, logger, clock: new FakeClock() })
  const network = await backend.registerNetwork(config({ type: 'extension' }), new AbortController().signal)
  const ac = new AbortController()
  const done = network.run(ac.signal)
  try {
    const p3 = lease({ type: 'extension', subnet: '10.5.3.0/24', publicIP: '192.168.1.3', data: 'vtep=3' })
    const p4 = lease({ type: 'extension', subnet: '10.5.4.0/24', publicIP: '192.168.1.4' })
    const bad = lease({ type: 'extension', subnet: '10.5.1.0/24', publicIP: '192.168.1.7' })
    sm.added(p3, bad, p4)
    sm.removed(p3)
    await until(() => { try { return calls(log).length === 3 } catch { return false } })
    const [add3, add4, rm3] = calls(log)
    assert.deepEqual(add3, { argv: ['fail', 'add'], env: { SUBNET: '10.5.3.0/24', PUBLIC_IP: '192.168.1.3' }, stdin: 'vtep=3\n' })
    assert.deepEqual(add4, { argv: ['fail', 'add'], env: { SUBNET: '10.5.4.0/24', PUBLIC_IP: '192.168.1.4' }, stdin: '\n' })
    assert.deepEqual(rm3, { argv: ['remove', '10.5.3.0/24'], env: { SUBNET: '10.5.3.0/24', PUBLIC_IP: '192.168.1.3' }, stdin: 'vtep=3\n' })
    const failures = logger.entries.filter((e) => e.level === 'error' && /SubnetAddCommand failed: exit status 3/.test(e.msg))
    assert.equal(failures.length, 2)
    assert.equal(failures[0]?.fields.stderr, 'no route for you')
    assert.ok(logger.entries.some((e) => e.msg === 'refusing lease' && /overlaps this host's subnet/.test(String(e.fields.reason))))
  } finally {
    delete process.env.ADD_MODE
    ac.abort()
    await done
  }
})
