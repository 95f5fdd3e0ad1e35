/** The doctor's checks as pure functions of facts: a healthy host yields nothing, each break its code. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { DoctorFacts, PeerFacts } from '../../../src/doctor/facts.ts'
import { runChecks } from '../../../src/doctor/checks/index.ts'
import { parseIptablesSave } from '../../../src/doctor/checks/firewall.ts'
import { kernelVersion } from '../../../src/doctor/checks/host-config.ts'
import { exitCodeFor, FINDING_CODES } from '../../../src/doctor/finding.ts'
import { parsePingSummary } from '../../../src/doctor/probe.ts'
import { formatReport, buildReport } from '../../../src/doctor/report.ts'

const peer: PeerFacts = {
  name: '10.200.0.2', publicIp: '10.200.0.2', subnet: '10.5.2.0/24', backendType: 'vxlan', vtepMac: '02:00:00:00:00:02',
  underlay: { ok: true, rttMs: 0.1 }, overlay: { ok: true, rttMs: 0.2 }, overlayFull: { ok: true, bytes: 1422 },
  route: { dev: 'flannel.1', gateway: '10.5.2.0' }, neighMac: '02:00:00:00:00:02', fdbDsts: ['10.200.0.2'], underlayDev: 'eth0',
}

const healthy: DoctorFacts = {
  mode: 'etcd', host: '10.200.0.1', backendType: 'vxlan', network: '10.5.0.0/16', enableIPv6: false, enableNFTables: false,
  iface: { name: 'eth0', mtu: 1500, addr: '10.200.0.1' },
  device: { name: 'flannel.1', mtu: 1450, mac: '02:00:00:00:00:01', up: true, txChecksumIpGeneric: true },
  expectedDeviceMtu: 1450,
  subnetEnv: { path: '/run/flannel/subnet.env', values: { FLANNEL_NETWORK: '10.5.0.0/16', FLANNEL_SUBNET: '10.5.1.1/24', FLANNEL_MTU: '1450', FLANNEL_IPMASQ: 'false' } },
  own: { subnet: '10.5.1.0/24', publicIp: '10.200.0.1', vtepMac: '02:00:00:00:00:01', expiresInSeconds: 86_000 },
  leases: [
    { name: '10.200.0.1', subnet: '10.5.1.0/24', publicIp: '10.200.0.1', expiresInSeconds: 86_000 },
    { name: '10.200.0.2', subnet: '10.5.2.0/24', publicIp: '10.200.0.2', expiresInSeconds: 86_000 },
  ],
  renewMarginMinutes: 60,
  sysctl: { ipForward: '1', brNfCallIptables: '1', brNfCallIp6tables: '1' },
  bridges: ['cni0'],
  iptables: [{ variant: 'nft', forwardPolicy: 'ACCEPT', flannelRules: 3, acceptsNetwork: true }],
  nftTables: [],
  kernelRelease: '6.1.0-18-amd64',
  forwardRules: true,
  peers: [peer],
}

const codesOf = (f: DoctorFacts): string[] => [...new Set(runChecks(f).map((x) => x.code))].sort()

test('a healthy host yields no finding and exit code 0', () => {
  assert.deepEqual(runChecks(healthy), [])
  assert.equal(exitCodeFor(runChecks(healthy)), 0)
})

const cases: Array<[string, (f: DoctorFacts) => DoctorFacts, string[]]> = [
  ['overlay blocked', (f) => ({ ...f, peers: [{ ...peer, overlay: { ok: false }, overlayFull: { ok: false, bytes: 1422 } }] }), ['overlay-unreachable']],
  ['underlay filtered, overlay fine', (f) => ({ ...f, peers: [{ ...peer, underlay: { ok: false } }] }), ['overlay-unreachable']],
  ['device MTU lowered', (f) => ({ ...f, device: { ...f.device!, mtu: 1300 } }), ['mtu-mismatch']],
  ['path MTU smaller', (f) => ({ ...f, peers: [{ ...peer, overlayFull: { ok: false, bytes: 1422 } }] }), ['mtu-mismatch']],
  ['subnet.env missing', (f) => ({ ...f, subnetEnv: { path: '/x' } }), ['subnet-env-missing']],
  ['subnet.env stale', (f) => ({ ...f, subnetEnv: { path: '/x', values: { ...f.subnetEnv.values, FLANNEL_SUBNET: '10.5.9.1/24' } } }), ['subnet-env-stale']],
  ['VTEP MAC drift', (f) => ({ ...f, device: { ...f.device!, mac: '02:aa:00:00:00:01' } }), ['vtep-mac-drift']],
  ['duplicate public IP', (f) => ({ ...f, leases: [...f.leases, { name: 'x', subnet: '10.5.3.0/24', publicIp: '10.200.0.2' }] }), ['duplicate-public-ip']],
  ['wrong interface', (f) => ({ ...f, peers: [{ ...peer, underlayDev: 'eth1' }] }), ['wrong-interface']],
  ['ip_forward off', (f) => ({ ...f, sysctl: { ...f.sysctl, ipForward: '0' } }), ['ip-forward-off']],
  ['br_netfilter not loaded', (f) => ({ ...f, sysctl: { ipForward: '1' } }), ['br-netfilter-missing']],
  ['bridge-nf-call-iptables 0 with a bridge', (f) => ({ ...f, sysctl: { ...f.sysctl, brNfCallIptables: '0' } }), ['br-netfilter-missing']],
  ['FORWARD DROP without accepts', (f) => ({ ...f, iptables: [{ variant: 'legacy', forwardPolicy: 'DROP', flannelRules: 0, acceptsNetwork: false }] }), ['forward-drop']],
  ['checksum offload on a 5.4 kernel', (f) => ({ ...f, kernelRelease: '5.4.0-42-generic' }), ['checksum-offload-bug']],
  ['FLANNEL rules in legacy and nft', (f) => ({ ...f, iptables: [...f.iptables, { variant: 'legacy', flannelRules: 2, acceptsNetwork: false }] }), ['iptables-backend-mismatch']],
  ['lease expiring', (f) => ({ ...f, leases: [{ ...f.leases[1]!, expiresInSeconds: 120 }, f.leases[0]!] }), ['lease-expiring']],
  ['kube node without podCIDR', (f) => ({ ...f, mode: 'kube', node: { name: 'n1' } }), ['podcidr-unassigned']],
  ['device absent', (f) => ({ ...f, device: null }), ['kernel-state-missing']],
  ['peer FDB entry absent', (f) => ({ ...f, peers: [{ ...peer, fdbDsts: [] }] }), ['kernel-state-missing']],
]

for (const [what, breakIt, want] of cases) {
  test(`${what}: ${want.join(', ')}`, () => {
    const findings = runChecks(breakIt(healthy))
    assert.deepEqual(codesOf(breakIt(healthy)), want)
    for (const f of findings) {
      assert.ok(f.problem.length > 0 && !f.problem.includes('\n'), 'one line of problem')
      assert.ok(f.fix.length > 0 && !f.fix.includes('\n'), 'one line of fix')
    }
    assert.equal(exitCodeFor(findings), 1)
  })
}

test('every code is covered by a case above', () => {
  const covered = new Set(cases.flatMap(([, , c]) => c))
  assert.deepEqual(FINDING_CODES.filter((c) => !covered.has(c)), [])
})

test('no checksum finding on 5.7+ kernels or with the offload off', () => {
  assert.deepEqual(codesOf({ ...healthy, kernelRelease: '5.7.0' }), [])
  assert.deepEqual(codesOf({ ...healthy, kernelRelease: '5.4.0', device: { ...healthy.device!, txChecksumIpGeneric: false } }), [])
  assert.deepEqual(kernelVersion('5.6.19-300.fc32.x86_64'), [5, 6])
})

test('iptables-save: FORWARD policy, FLANNEL rules, and accepts through a jump chain', () => {
  const text = [
    '*nat', ':POSTROUTING ACCEPT [0:0]', ':FLANNEL-POSTRTG - [0:0]', '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG', 'COMMIT',
    '*filter', ':FORWARD DROP [0:0]', ':FLANNEL-FWD - [0:0]', '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-A FLANNEL-FWD -s 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT', 'COMMIT',
  ].join('\n')
  assert.deepEqual(parseIptablesSave('nft', text, '10.5.0.0/16'), { variant: 'nft', forwardPolicy: 'DROP', flannelRules: 3, acceptsNetwork: true })
  const bare = '*filter\n:FORWARD DROP [0:0]\n-A FORWARD -i eth9 -j ACCEPT\nCOMMIT\n'
  assert.equal(parseIptablesSave('legacy', bare, '10.5.0.0/16').acceptsNetwork, false)
  assert.equal(parseIptablesSave('legacy', '*filter\n:FORWARD DROP [0:0]\n-A FORWARD -j ACCEPT\nCOMMIT\n', '10.5.0.0/16').acceptsNetwork, true)
})

test('ping summary and the human table', () => {
  assert.equal(parsePingSummary('rtt min/avg/max/mdev = 0.045/0.050/0.055/0.004 ms'), 0.05)
  assert.equal(parsePingSummary('100% packet loss'), undefined)
  const broken = { ...healthy, subnetEnv: { path: '/run/flannel/subnet.env' } }
  const text = formatReport(buildReport(broken, runChecks(broken)))
  assert.match(text, /ERROR {2}subnet-env-missing {2}\/run\/flannel\/subnet.env does not exist/)
  assert.match(text, /fix: start weftd/)
  assert.match(formatReport(buildReport(healthy, [])), /no problem found/)
})
