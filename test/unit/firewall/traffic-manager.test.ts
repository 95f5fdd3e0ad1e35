import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTrafficRules, type TrafficOptions, type TrafficRulesDeps } from '../../../src/firewall/traffic-manager.ts'
import { MemoryFirewall } from '../../../src/firewall/memory-firewall.ts'
import { previousSubnetsFromEnv } from '../../../src/firewall/previous-subnets.ts'
import { FakeClock } from '../../../src/util/clock.ts'
import { MemoryLogger } from '../../../src/log/logger.ts'
import { formatCidr, parseCidr, parseIp, type IpNet } from '../../../src/ip/ip.ts'
import type { NetworkConfig } from '../../../src/config/network-config.ts'
import type { Route, RouteFilter } from '../../../src/kernel/kernel.ts'

const cidr = (s: string): IpNet => parseCidr(s) as IpNet
const family = (net: string) => ({ network: cidr(net), subnetLen: 24, subnetMin: parseIp('10.5.1.0')!, subnetMax: parseIp('10.5.255.0')! })
const CONFIG: NetworkConfig = {
  enableIPv4: true, enableIPv6: true, ipv4: family('10.5.0.0/16'), ipv6: family('fd00:10::/56'),
  enableNFTables: false, backend: { type: 'vxlan', options: {} },
}
const LEASE = { subnet: cidr('10.5.1.0/24'), ipv6Subnet: cidr('fd00:10:0:1::/64'), attrs: { backendType: 'vxlan' } }
const OPTS: TrafficOptions = { ipMasq: true, ipMasqFullyRandomDisable: false, forwardRules: true, blackholeRoute: false, resyncSeconds: 5 }

class RouteTable {
  routes: Route[] = []
  async listRoutes(f: RouteFilter): Promise<Route[]> {
    return this.routes.filter((r) => r.dst.family === f.family && (f.type === undefined || r.type === f.type))
  }
  async replaceRoute(r: Route): Promise<void> {
    this.routes = this.routes.filter((x) => formatCidr(x.dst) !== formatCidr(r.dst)).concat(r)
  }
}

function setup(over: Partial<TrafficRulesDeps> = {}) {
  const ipt = new MemoryFirewall('iptables')
  const nft = new MemoryFirewall('nftables')
  const clock = new FakeClock()
  const logger = new MemoryLogger()
  const kernel = new RouteTable()
  const deps: TrafficRulesDeps = {
    options: OPTS, config: CONFIG, lease: LEASE, previous: {}, kernel, logger, clock,
    firewalls: { iptables: ipt, nftables: nft }, ...over,
  }
  return { ipt, nft, clock, logger, kernel, deps }
}

test('applies v4 and v6 rules with random-fully, then cleans the nftables mode off the start-up path', async () => {
  const { ipt, nft, deps } = setup()
  const ac = new AbortController()
  const { otherModeCleaned } = await startTrafficRules(deps, ac.signal)
  assert.deepEqual(nft.ops, [], 'not yet: subnet.env is written first')
  await otherModeCleaned
  ac.abort()
  assert.deepEqual(nft.ops, [{ op: 'cleanup', families: [4, 6] }])
  assert.equal(ipt.rules(4).length, 10)
  assert.equal(ipt.rules(6).length, 10)
  assert.ok(ipt.rules(6).includes('-A FLANNEL-POSTRTG -s fd00:10::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully'))
})

test('--ip-masq-fully-random-disable drops --random-fully; no --ip-masq leaves only forward rules', async () => {
  const a = setup({ options: { ...OPTS, ipMasqFullyRandomDisable: true } })
  const ac = new AbortController()
  await startTrafficRules(a.deps, ac.signal)
  assert.equal(a.ipt.rules(4).filter((l) => l.includes('random-fully')).length, 0)
  const b = setup({ options: { ...OPTS, ipMasq: false } })
  await startTrafficRules(b.deps, ac.signal)
  ac.abort()
  assert.deepEqual(b.ipt.rules(4).map((l) => l.split(' ')[1]), ['FORWARD', 'FLANNEL-FWD', 'FLANNEL-FWD'])
})

test('nftables mode uses the nftables firewall and cleans iptables artefacts', async () => {
  const { ipt, nft, deps } = setup({ config: { ...CONFIG, enableNFTables: true } })
  const ac = new AbortController()
  await (await startTrafficRules(deps, ac.signal)).otherModeCleaned
  ac.abort()
  assert.deepEqual(ipt.ops, [{ op: 'cleanup', families: [4, 6] }])
  assert.equal(nft.ops.filter((o) => o.op === 'apply').length, 2)
})

test('a rule deleted by hand is restored at the next resync, with one check per family', async () => {
  const { ipt, clock, logger, deps } = setup()
  const ac = new AbortController()
  await startTrafficRules(deps, ac.signal)
  const victim = '-A FLANNEL-POSTRTG -s 10.5.1.0/24 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN'
  ipt.deleteRule(4, victim)
  assert.ok(!ipt.rules(4).includes(victim))
  const before = ipt.ops.length
  await clock.advance(4_999)
  assert.equal(ipt.ops.length, before, 'nothing happens before the period ends')
  await clock.advance(1)
  await new Promise((r) => setImmediate(r))
  assert.ok(ipt.rules(4).includes(victim))
  const after = ipt.ops.slice(before)
  assert.deepEqual(after.map((o) => o.op), ['check', 'apply', 'check'])
  assert.equal(logger.find('some rules are missing; deleting and recreating rules').length, 1)
  ac.abort()
  await clock.advance(10_000)
  assert.equal(ipt.ops.length, before + 3, 'no resync after abort')
})

test('a failed resync is logged and retried next period', async () => {
  const { ipt, clock, logger, deps } = setup()
  const ac = new AbortController()
  await startTrafficRules(deps, ac.signal)
  ipt.deleteRule(4, ipt.rules(4)[0] as string)
  ipt.failNext('apply')
  await clock.advance(5_000)
  await new Promise((r) => setImmediate(r))
  assert.equal(logger.find('failed to resync traffic rules').length, 1)
  await clock.advance(5_000)
  await new Promise((r) => setImmediate(r))
  assert.equal(ipt.rules(4).length, 10)
  ac.abort()
})

test('rules of the previous subnet.env values are passed as stale to the first apply', async () => {
  const previous = previousSubnetsFromEnv('FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n')
  const { ipt, logger, deps } = setup({ previous })
  const ac = new AbortController()
  await startTrafficRules(deps, ac.signal)
  ac.abort()
  const applies = ipt.ops.filter((o) => o.op === 'apply')
  assert.equal(applies[0]?.op === 'apply' && applies[0].stale && formatCidr(applies[0].stale.subnet), '10.5.9.0/24')
  assert.equal(applies[1]?.op === 'apply' && applies[1].stale, undefined, 'no previous IPv6 values: nothing stale')
  assert.equal(logger.find('removing rules of the previous network/subnet').length, 1)
})

test('unchanged previous values mark nothing stale', async () => {
  const previous = previousSubnetsFromEnv('FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.1.1/24\n')
  const { ipt, deps } = setup({ previous })
  const ac = new AbortController()
  await startTrafficRules(deps, ac.signal)
  ac.abort()
  assert.ok(ipt.ops.every((o) => o.op !== 'apply' || o.stale === undefined))
})

test('first application failure rejects (the daemon exits, as flannel does)', async () => {
  const { ipt, deps } = setup()
  ipt.failNext('apply')
  await assert.rejects(startTrafficRules(deps, new AbortController().signal), /injected apply failure/)
})

test('blackhole routes are added once and re-added when removed', async () => {
  const { kernel, clock, deps } = setup({ options: { ...OPTS, blackholeRoute: true } })
  const ac = new AbortController()
  await startTrafficRules(deps, ac.signal)
  assert.deepEqual(kernel.routes.map((r) => `${r.type} ${formatCidr(r.dst)}`), ['blackhole 10.5.1.0/24', 'blackhole fd00:10:0:1::/64'])
  kernel.routes = kernel.routes.slice(1)
  await clock.advance(5_000)
  await new Promise((r) => setImmediate(r))
  assert.equal(kernel.routes.length, 2)
  ac.abort()
})
