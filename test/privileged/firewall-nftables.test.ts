/**
 * nftables mode against real nft in a throwaway netns: flannel's tables listed exactly, one
 * transaction, resync restoring a removed rule, and switching modes cleaning the other mode.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createScratchNetns, needsRoot } from '../helpers/scratch-netns.ts'
import { netnsRunner, type CommandRunner } from '../../src/firewall/command-runner.ts'
import { startTrafficRules, type TrafficOptions, type TrafficRulesDeps } from '../../src/firewall/traffic-manager.ts'
import { MemoryLogger } from '../../src/log/logger.ts'
import { systemClock } from '../../src/util/clock.ts'
import { parseCidr, parseIp, type IpNet } from '../../src/ip/ip.ts'
import type { NetworkConfig } from '../../src/config/network-config.ts'

const skip = needsRoot()
const cidr = (s: string): IpNet => parseCidr(s) as IpNet
const fam = (net: string) => ({ network: cidr(net), subnetLen: 24, subnetMin: parseIp('10.5.1.0')!, subnetMax: parseIp('10.5.255.0')! })
const CONFIG: NetworkConfig = {
  enableIPv4: true, enableIPv6: true, ipv4: fam('10.5.0.0/16'), ipv6: fam('fd00:10::/56'),
  enableNFTables: true, backend: { type: 'host-gw', options: {} },
}
const OPTS: TrafficOptions = { ipMasq: true, ipMasqFullyRandomDisable: false, forwardRules: true, blackholeRoute: false, resyncSeconds: 1 }

// `nft list table ip flannel-ipv4` with flannel's rules (reference §7), NET=10.5.0.0/16, POD=10.5.1.0/24
const GOLDEN_V4 = `table ip flannel-ipv4 {
	comment "rules for flannel-ipv4"
	chain postrtg {
		comment "chain to manage traffic masquerading by flannel"
		type nat hook postrouting priority srcnat; policy accept;
		meta mark 0x00004000 return
		ip saddr 10.5.1.0/24 ip daddr 10.5.0.0/16 return
		ip saddr 10.5.0.0/16 ip daddr 10.5.1.0/24 return
		ip saddr != 10.5.1.0/24 ip daddr 10.5.0.0/16 return
		ip saddr 10.5.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random
		ip saddr != 10.5.0.0/16 ip daddr 10.5.0.0/16 masquerade fully-random
	}

	chain forward {
		comment "chain to accept flannel traffic"
		type filter hook forward priority filter; policy accept;
		ip saddr 10.5.0.0/16 accept
		ip daddr 10.5.0.0/16 accept
	}
}
`
const GOLDEN_V6 = `table ip6 flannel-ipv6 {
	comment "rules for flannel-ipv6"
	chain postrtg {
		comment "chain to manage traffic masquerading by flannel"
		type nat hook postrouting priority srcnat; policy accept;
		meta mark 0x00004000 return
		ip6 saddr fd00:10:0:1::/64 ip6 daddr fd00:10::/56 return
		ip6 saddr fd00:10::/56 ip6 daddr fd00:10:0:1::/64 return
		ip6 saddr != fd00:10:0:1::/64 ip6 daddr fd00:10::/56 return
		ip6 saddr fd00:10::/56 ip6 daddr != ff00::/8 masquerade fully-random
		ip6 saddr != fd00:10::/56 ip6 daddr fd00:10::/56 masquerade fully-random
	}

	chain forward {
		comment "chain to accept flannel traffic"
		type filter hook forward priority filter; policy accept;
		ip6 saddr fd00:10::/56 accept
		ip6 daddr fd00:10::/56 accept
	}
}
`

function deps(nsName: string, calls: string[], over: Partial<TrafficRulesDeps> = {}): TrafficRulesDeps {
  const base = netnsRunner(nsName)
  const runner: CommandRunner = (file, args, input) => {
    calls.push([file, ...args].join(' '))
    return base(file, args, input)
  }
  return {
    options: OPTS, config: CONFIG, lease: { subnet: cidr('10.5.1.0/24'), ipv6Subnet: cidr('fd00:10:0:1::/64'), attrs: { backendType: 'host-gw' } },
    previous: {}, kernel: { listRoutes: async () => [], replaceRoute: async () => {} }, logger: new MemoryLogger(), clock: systemClock, runner, ...over,
  }
}

test('nftables mode lists exactly flannel\'s tables, written in one nft transaction per family', { skip }, async () => {
  const ns = createScratchNetns('n')
  const ac = new AbortController()
  const calls: string[] = []
  try {
    await startTrafficRules(deps(ns.name, calls), ac.signal)
    assert.equal(ns.exec('nft', ['list', 'table', 'ip', 'flannel-ipv4']), GOLDEN_V4)
    assert.equal(ns.exec('nft', ['list', 'table', 'ip6', 'flannel-ipv6']), GOLDEN_V6)
    assert.equal(calls.filter((c) => c === 'nft -f -').length, 2)
    assert.equal(calls.filter((c) => c.startsWith('nft --check')).length, 2, 'fully-random probed per family as a dry run')
  } finally {
    ac.abort()
    ns.destroy()
  }
})

test('a rule deleted by hand is restored within one resync period', { skip }, async () => {
  const ns = createScratchNetns('n')
  const ac = new AbortController()
  const logger = new MemoryLogger()
  try {
    await startTrafficRules(deps(ns.name, [], { logger }), ac.signal)
    const listing = ns.exec('nft', ['-a', 'list', 'chain', 'ip', 'flannel-ipv4', 'postrtg'])
    const handle = /ip saddr 10\.5\.1\.0\/24 ip daddr 10\.5\.0\.0\/16 return # handle (\d+)/.exec(listing)?.[1]
    assert.ok(handle, listing)
    ns.exec('nft', ['delete', 'rule', 'ip', 'flannel-ipv4', 'postrtg', 'handle', handle])
    assert.notEqual(ns.exec('nft', ['list', 'table', 'ip', 'flannel-ipv4']), GOLDEN_V4)
    const start = Date.now()
    while (ns.exec('nft', ['list', 'table', 'ip', 'flannel-ipv4']) !== GOLDEN_V4) {
      assert.ok(Date.now() - start < 2_000, 'not restored within 2 s')
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.ok(Date.now() - start <= 1_800, `restored after ${Date.now() - start} ms (resync 1 s)`)
    console.log(`# nft rule restored ${Date.now() - start} ms after deletion (resync 1 s)`)
    assert.equal(logger.find('some rules are missing; deleting and recreating rules').length, 1)
  } finally {
    ac.abort()
    ns.destroy()
  }
})

test('switching modes removes the other mode\'s artefacts (including the filter FLANNEL-FWD flannel leaves)', { skip }, async () => {
  const ns = createScratchNetns('n')
  const slow = { ...OPTS, resyncSeconds: 60 }
  const run = async (enableNFTables: boolean): Promise<void> => {
    const ac = new AbortController()
    await (await startTrafficRules(deps(ns.name, [], { options: slow, config: { ...CONFIG, enableNFTables } }), ac.signal)).otherModeCleaned
    ac.abort()
  }
  const iptFlannel = (): string[] => [...ns.exec('iptables-save', []).split('\n'), ...ns.exec('ip6tables-save', []).split('\n')].filter((l) => l.includes('FLANNEL'))
  try {
    await run(false)
    assert.equal(iptFlannel().length, 24)
    await run(true)
    assert.deepEqual(iptFlannel(), [])
    assert.equal(ns.exec('nft', ['list', 'table', 'ip', 'flannel-ipv4']), GOLDEN_V4)
    await run(false)
    assert.equal(iptFlannel().length, 24)
    assert.doesNotMatch(ns.exec('nft', ['list', 'tables']), /flannel-ipv/)
  } finally {
    ns.destroy()
  }
})
