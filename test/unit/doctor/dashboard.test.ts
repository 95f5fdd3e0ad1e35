/** The dashboard's pure parts: peers from kernel tables, the cluster view, the flags. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr, parseIp } from '../../../src/ip/ip.ts'
import { peersFromKernel, type ProbeRow } from '../../../src/dashboard/probe-row.ts'
import { clusterView } from '../../../src/dashboard/matrix.ts'
import { parseDashboardArgs } from '../../../src/cli/commands/dashboard.ts'
import type { Link } from '../../../src/kernel/kernel.ts'

const ip = (t: string) => parseIp(t)!
const net = (t: string) => parseCidr(t)!

test('vxlan peers: route → neighbour → FDB gives subnet, overlay address and public IP', () => {
  const links: Link[] = [
    { index: 2, name: 'eth0', mtu: 1500, up: true },
    { index: 5, name: 'flannel.1', kind: 'vxlan', mtu: 1450, up: true, mac: '02:00:00:00:00:01' },
  ]
  const routes = [
    { dst: net('0.0.0.0/0'), gateway: ip('10.200.0.254'), index: 2 },
    { dst: net('10.5.2.0/24'), gateway: ip('10.5.2.0'), index: 5, onlink: true },
    { dst: net('10.5.3.0/24'), gateway: ip('10.5.3.0'), index: 5, onlink: true },
    { dst: net('10.200.0.0/24'), index: 2 },
  ]
  const neighs = [{ index: 5, ip: ip('10.5.2.0'), mac: '02:00:00:00:00:02' }] // 10.5.3.0 has none: not a (complete) peer
  const fdb = [{ index: 5, mac: '02:00:00:00:00:02', dst: ip('10.200.0.2') }]
  assert.deepEqual(peersFromKernel(links, routes, neighs, fdb, '10.5.0.0/16'), {
    backend: 'vxlan', peers: [{ publicIp: '10.200.0.2', subnet: '10.5.2.0/24', target: '10.5.2.0' }],
  })
})

test('host-gw peers: routes in the network via a gateway', () => {
  const links: Link[] = [{ index: 2, name: 'eth0', mtu: 1500, up: true }]
  const routes = [{ dst: net('10.5.2.0/24'), gateway: ip('10.200.0.2'), index: 2 }, { dst: net('0.0.0.0/0'), gateway: ip('10.200.0.254'), index: 2 }]
  assert.deepEqual(peersFromKernel(links, routes, [], [], '10.5.0.0/16'), { backend: 'host-gw', peers: [{ publicIp: '10.200.0.2', subnet: '10.5.2.0/24', target: '10.200.0.2' }] })
})

const row = (host: string, probes: ProbeRow['probes']): ProbeRow => ({ host, subnet: '10.5.1.0/24', backend: 'vxlan', ready: true, at: 1, probes })

test('cluster view: one cell per ordered pair; unreadable hosts and unprobed pairs are unknown', () => {
  const v = clusterView([
    { endpoint: 'http://a', row: row('10.0.0.1', [{ to: '10.0.0.2', subnet: 's', state: 'ok', rttMs: 0.2 }, { to: '10.0.0.3', subnet: 's', state: 'fail' }]) },
    { endpoint: 'http://b', row: row('10.0.0.2', [{ to: '10.0.0.1', subnet: 's', state: 'ok' }]) },
    { endpoint: 'http://c', error: 'timed out', host: '10.0.0.3' },
  ], 5)
  assert.deepEqual(v.hosts.map((h) => [h.id, h.health]), [['10.0.0.1', 'ready'], ['10.0.0.2', 'ready'], ['10.0.0.3', 'unreachable']])
  assert.equal(v.cells.length, 6)
  const state = (f: string, t: string) => v.cells.find((c) => c.from === f && c.to === t)?.state
  assert.equal(state('10.0.0.1', '10.0.0.2'), 'ok')
  assert.equal(state('10.0.0.1', '10.0.0.3'), 'fail')
  assert.equal(state('10.0.0.2', '10.0.0.3'), 'unknown', 'not in its row')
  assert.equal(state('10.0.0.3', '10.0.0.1'), 'unknown', 'its row could not be read')
})

test('dashboard flags: loopback default, endpoints, clear errors', () => {
  assert.deepEqual(parseDashboardArgs(['--hosts', '10.0.0.1:8471,10.0.0.2:8471']), { host: '127.0.0.1', port: 8470, endpoints: ['http://10.0.0.1:8471', 'http://10.0.0.2:8471'] })
  assert.deepEqual(parseDashboardArgs(['--listen=[::1]:9000', '--hosts=http://h:1']), { host: '::1', port: 9000, endpoints: ['http://h:1'] })
  assert.throws(() => parseDashboardArgs([]), /--hosts: is required/)
  assert.throws(() => parseDashboardArgs(['--listen', 'localhost', '--hosts', 'a:1']), /--listen: must be IP:PORT/)
  assert.throws(() => parseDashboardArgs(['--bogus']), /--bogus: unknown flag/)
})
