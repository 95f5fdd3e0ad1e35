import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FLAGS, envName, parseDaemonArgs, usageText, type DaemonOptions, type ParseResult } from '../../../src/daemon/options.ts'
import { formatIp } from '../../../src/ip/ip.ts'
import { isWeftError } from '../../../src/errors.ts'

function opts(argv: string[], env: Record<string, string | undefined> = {}, tty = false): DaemonOptions {
  const r: ParseResult = parseDaemonArgs(argv, env, { stderrIsTTY: tty })
  assert.ok(!('help' in r) && !('version' in r), 'expected options')
  return r as DaemonOptions
}

function usageError(argv: string[], env: Record<string, string>, field: string, text: string): void {
  assert.throws(() => parseDaemonArgs(argv, env), (err: unknown) => {
    assert.ok(isWeftError(err, 'USAGE'), `expected USAGE, got ${String(err)}`)
    assert.equal((err as { field?: string }).field, field)
    assert.ok(err.message.includes(text), `${JSON.stringify(err.message)} lacks ${JSON.stringify(text)}`)
    return true
  })
}

test('defaults are flanneld\'s', () => {
  const o = opts([])
  assert.deepEqual(o.etcdEndpoints, ['http://127.0.0.1:4001', 'http://127.0.0.1:2379'])
  assert.equal(o.etcdPrefix, '/coreos.com/network')
  assert.equal(o.subnetFile, '/run/flannel/subnet.env')
  assert.equal(o.subnetLeaseRenewMargin, 60)
  assert.equal(o.kubeAnnotationPrefix, 'flannel.alpha.coreos.com')
  assert.equal(o.healthzIp, '0.0.0.0')
  assert.equal(o.healthzPort, 0)
  assert.equal(o.iptablesResync, 5)
  assert.equal(o.iptablesForwardRules, true)
  assert.equal(o.setNodeNetworkUnavailable, true)
  assert.equal(o.netConfigPath, '/etc/kube-flannel/net-conf.json')
  for (const k of ['ipMasq', 'ipMasqFullyRandomDisable', 'kubeSubnetMgr', 'ipBlackholeRoute'] as const) assert.equal(o[k], false, k)
  assert.deepEqual([o.iface, o.ifaceRegex], [[], []])
  assert.equal(o.publicIp, undefined)
  assert.equal(o.publicIpv6, undefined)
  assert.equal(o.ifaceCanReach, undefined)
  assert.equal(o.verbosity, 0)
  assert.equal(o.logLevel, 'info')
  assert.equal(o.sources['etcd-prefix'], 'default')
})

test('every DaemonOptions field comes from the one table', () => {
  const keys = new Set(FLAGS.map((f) => f.key).filter(Boolean))
  const o = opts(['--public-ip=1.2.3.4', '--public-ipv6=2001:db8::1', '--iface-can-reach=8.8.8.8'])
  for (const k of Object.keys(o)) if (!['logLevel', 'sources'].includes(k)) assert.ok(keys.has(k as keyof DaemonOptions), k)
  assert.equal(new Set(FLAGS.map((f) => f.name)).size, FLAGS.length, 'no flag declared twice')
})

test('single or double dash, =value or separate value', () => {
  for (const argv of [['-etcd-prefix=/x'], ['--etcd-prefix=/x'], ['-etcd-prefix', '/x'], ['--etcd-prefix', '/x']]) {
    assert.equal(opts(argv).etcdPrefix, '/x', argv.join(' '))
  }
  assert.equal(opts(['--etcd-prefix=']).etcdPrefix, '')
  assert.equal(opts(['--etcd-prefix=a=b']).etcdPrefix, 'a=b')
  // As in Go, a separate value is taken even when it starts with a dash.
  assert.equal(opts(['--etcd-password', '-secret']).etcdPassword, '-secret')
  assert.equal(opts(['--etcd-prefix=/a', '--etcd-prefix=/b']).etcdPrefix, '/b', 'a repeated flag: the last wins')
})

test('bools: bare flag, =true/=false and Go spellings; never a separate value', () => {
  assert.equal(opts(['--ip-masq']).ipMasq, true)
  assert.equal(opts(['-ip-masq=true']).ipMasq, true)
  assert.equal(opts(['--iptables-forward-rules=false']).iptablesForwardRules, false)
  for (const t of ['1', 't', 'T', 'TRUE', 'True']) assert.equal(opts([`--kube-subnet-mgr=${t}`]).kubeSubnetMgr, true, t)
  for (const f of ['0', 'f', 'F', 'FALSE', 'False']) assert.equal(opts([`--set-node-network-unavailable=${f}`]).setNodeNetworkUnavailable, false, f)
  usageError(['--ip-masq=yes'], {}, '--ip-masq', 'must be a boolean (true or false), got "yes"')
  usageError(['--ip-masq', 'false'], {}, '', 'unexpected argument "false"')
})

test('list flags repeat; env gives a list flag one value', () => {
  const o = opts(['--iface', 'eth0', '-iface=10.0.0.1', '--iface-regex=^en', '--iface-regex', 'eth[0-9]+'])
  assert.deepEqual(o.iface, ['eth0', '10.0.0.1'])
  assert.deepEqual(o.ifaceRegex, ['^en', 'eth[0-9]+'])
  assert.deepEqual(opts([], { FLANNELD_IFACE: 'eth0,eth1' }).iface, ['eth0,eth1'])
  usageError(['--iface-regex=('], {}, '--iface-regex', 'invalid regular expression "("')
})

test('env fills only flags not given on the command line', () => {
  const env = { FLANNELD_ETCD_PREFIX: '/env', FLANNELD_IP_MASQ: 'true', FLANNELD_SUBNET_FILE: '/env/subnet.env', FLANNELD_IFACE: 'envif', FLANNELD_V: '5', FLANNELD_PUBLIC_IPV6: '2001:db8::5' }
  const o = opts(['--etcd-prefix=/cli', '--iface=cliif'], env)
  assert.equal(o.etcdPrefix, '/cli')
  assert.deepEqual(o.iface, ['cliif'])
  assert.equal(o.ipMasq, true)
  assert.equal(o.subnetFile, '/env/subnet.env')
  assert.equal(o.verbosity, 5)
  assert.equal(o.logLevel, 'debug')
  assert.equal(formatIp(o.publicIpv6!), '2001:db8::5')
  assert.equal(o.sources['etcd-prefix'], 'cli')
  assert.equal(o.sources['subnet-file'], 'env')
  // Empty variables are skipped, as flagutil does; FLANNELD_VERSION has no effect.
  assert.equal(opts([], { FLANNELD_ETCD_PREFIX: '' }).etcdPrefix, '/coreos.com/network')
  assert.ok(!('version' in parseDaemonArgs([], { FLANNELD_VERSION: 'true' })))
  assert.equal(envName('subnet-lease-renew-margin'), 'FLANNELD_SUBNET_LEASE_RENEW_MARGIN')
})

test('invalid env values are USAGE errors naming the variable', () => {
  usageError([], { FLANNELD_IP_MASQ: 'maybe' }, 'FLANNELD_IP_MASQ', 'must be a boolean')
  usageError([], { FLANNELD_SUBNET_LEASE_RENEW_MARGIN: '0' }, 'FLANNELD_SUBNET_LEASE_RENEW_MARGIN', 'must be in 1..1439, got 0')
  usageError([], { FLANNELD_PUBLIC_IP: '2001:db8::1' }, 'FLANNELD_PUBLIC_IP', 'must be an IPv4 address')
  usageError([], { FLANNELD_HEALTHZ_PORT: '8o' }, 'FLANNELD_HEALTHZ_PORT', 'must be an integer, got "8o"')
})

test('range and format rules', () => {
  assert.equal(opts(['--subnet-lease-renew-margin=1']).subnetLeaseRenewMargin, 1)
  assert.equal(opts(['--subnet-lease-renew-margin=1439']).subnetLeaseRenewMargin, 1439)
  usageError(['--subnet-lease-renew-margin=1440'], {}, '--subnet-lease-renew-margin', 'must be in 1..1439, got 1440')
  usageError(['--subnet-lease-renew-margin=0'], {}, '--subnet-lease-renew-margin', 'must be in 1..1439, got 0')
  usageError(['--iptables-resync=0'], {}, '--iptables-resync', 'got 0')
  assert.equal(opts(['--iptables-resync=1']).iptablesResync, 1)
  assert.equal(opts(['--healthz-port=65535']).healthzPort, 65535)
  usageError(['--healthz-port=65536'], {}, '--healthz-port', 'must be in 0..65535, got 65536')
  usageError(['--healthz-port=-1'], {}, '--healthz-port', 'got -1')
  usageError(['--healthz-port=1.5'], {}, '--healthz-port', 'must be an integer, got "1.5"')
  usageError(['--healthz-port=99999999999999999999'], {}, '--healthz-port', 'is out of range')
  usageError(['--healthz-ip=localhost'], {}, '--healthz-ip', 'must be an IP address')
  assert.equal(formatIp(opts(['--public-ip=192.0.2.1']).publicIp!), '192.0.2.1')
  usageError(['--public-ip=fe80::1'], {}, '--public-ip', 'must be an IPv4 address, got "fe80::1"')
  usageError(['--public-ip=300.1.1.1'], {}, '--public-ip', 'must be an IPv4 address')
  usageError(['--public-ipv6=10.0.0.1'], {}, '--public-ipv6', 'must be an IPv6 address, got "10.0.0.1"')
  assert.equal(formatIp(opts(['--iface-can-reach=2001:db8::9']).ifaceCanReach!), '2001:db8::9')
  usageError(['--iface-can-reach=example.com'], {}, '--iface-can-reach', 'must be an IP address')
})

test('etcd endpoints: comma list of http(s) URLs', () => {
  assert.deepEqual(opts(['--etcd-endpoints=https://10.0.0.1:2379,http://[::1]:2379']).etcdEndpoints, ['https://10.0.0.1:2379', 'http://[::1]:2379'])
  usageError(['--etcd-endpoints=10.0.0.1:2379'], {}, '--etcd-endpoints', 'must be a comma-separated list of http(s) URLs, got "10.0.0.1:2379"')
  usageError(['--etcd-endpoints=http://a:2379,'], {}, '--etcd-endpoints', 'got ""')
  usageError(['--etcd-endpoints=unix:///run/etcd.sock'], {}, '--etcd-endpoints', 'http(s) URLs')
})

test('klog flags: -v sets verbosity and level; -vmodule and -log_backtrace_at are ignored', () => {
  assert.equal(opts(['-v=3']).logLevel, 'info')
  const o = opts(['--v', '4', '-vmodule=foo=2', '-log_backtrace_at', 'x.go:1'])
  assert.equal(o.verbosity, 4)
  assert.equal(o.logLevel, 'debug')
  assert.ok(!('vmodule' in o))
  usageError(['-v=11'], {}, '--v', 'must be in 0..10, got 11')
})

test('log format: explicit, else human on a TTY and JSON otherwise', () => {
  assert.equal(opts([], {}, true).logFormat, 'human')
  assert.equal(opts([], {}, false).logFormat, 'json')
  assert.equal(opts(['--log-format=json'], {}, true).logFormat, 'json')
  assert.equal(opts([], { FLANNELD_LOG_FORMAT: 'human' }).logFormat, 'human')
  usageError(['--log-format=text'], {}, '--log-format', 'must be json or human, got "text"')
})

test('unknown flags and syntax errors', () => {
  usageError(['--ifac=eth0'], {}, '--ifac', 'unknown flag; did you mean --iface?')
  usageError(['--public_ip=1.2.3.4'], {}, '--public_ip', 'did you mean --public-ip?')
  usageError(['--subnet-lease'], {}, '--subnet-lease', 'did you mean --subnet-lease-renew-margin?')
  usageError(['--frobnicate'], {}, '--frobnicate', 'unknown flag')
  assert.throws(() => parseDaemonArgs(['--frobnicate'], {}), (e: Error) => !e.message.includes('did you mean'))
  usageError(['-x'], {}, '-x', 'unknown flag')
  usageError(['---iface=a'], {}, '', 'bad flag syntax: ---iface=a')
  usageError(['-=a'], {}, '', 'bad flag syntax')
  usageError(['eth0'], {}, '', 'unexpected argument "eth0"')
  usageError(['--etcd-prefix'], {}, '--etcd-prefix', 'flag needs an argument')
  usageError(['--', 'x'], {}, '', 'unexpected argument "x"')
  assert.equal(opts(['--ip-masq', '--']).ipMasq, true)
})

test('help and version', () => {
  for (const h of ['-h', '--help', '-help']) {
    const r = parseDaemonArgs(['--ip-masq', h, '--bogus'], {})
    assert.ok('help' in r)
    assert.match(r.help, /^Usage: weftd \[OPTION\]\.\.\.\n/)
  }
  const help = usageText()
  for (const f of FLAGS.filter((x) => !x.hidden)) assert.ok(help.includes(`--${f.name}`), f.name)
  assert.ok(help.includes('(default "/run/flannel/subnet.env") [$FLANNELD_SUBNET_FILE]'))
  assert.ok(help.includes('(default 60)'))
  assert.ok(!help.includes('vmodule'))
  assert.deepEqual(parseDaemonArgs(['--version'], {}), { version: true })
  assert.deepEqual(parseDaemonArgs(['-version', '--ip-masq'], {}), { version: true })
  assert.ok(!('version' in parseDaemonArgs(['--version=false'], {})))
  // Flags are checked before --version is honoured, as Go parses them all first.
  usageError(['--version', '--bogus'], {}, '--bogus', 'unknown flag')
})

test('the result is frozen', () => {
  const o = opts([])
  assert.ok(Object.isFrozen(o))
})

test('--metrics-addr: off by default, a bare port is loopback, FLANNELD_METRICS_ADDR works, bad values name the rule', () => {
  assert.equal(opts([]).metricsAddr, undefined)
  assert.deepEqual(opts(['--metrics-addr=9102']).metricsAddr, { host: '127.0.0.1', port: 9102 })
  assert.deepEqual(opts(['--metrics-addr', '0.0.0.0:9102']).metricsAddr, { host: '0.0.0.0', port: 9102 })
  assert.deepEqual(opts(['--metrics-addr=[::1]:9102']).metricsAddr, { host: '::1', port: 9102 })
  assert.deepEqual(opts([], { FLANNELD_METRICS_ADDR: 'node1.example:9100' }).metricsAddr, { host: 'node1.example', port: 9100 })
  assert.throws(() => opts(['--metrics-addr=9102:x']), /--metrics-addr: must be HOST:PORT, \[IPV6\]:PORT or PORT \(1\.\.65535\), got "9102:x"/)
  assert.throws(() => opts(['--metrics-addr=70000']), /--metrics-addr: must be HOST:PORT/)
  assert.throws(() => opts([], { FLANNELD_METRICS_ADDR: '[nope]:1' }), /FLANNELD_METRICS_ADDR: must be HOST:PORT/)
})
