import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NfTablesFirewall, nftPayload, nftRules, parseNftList } from '../../../src/firewall/nftables.ts'
import type { TrafficIntent } from '../../../src/firewall/firewall.ts'
import type { CommandRunner } from '../../../src/firewall/command-runner.ts'
import { parseCidr, type IpNet } from '../../../src/ip/ip.ts'
import { silentLogger } from '../../../src/log/logger.ts'

const cidr = (s: string): IpNet => parseCidr(s) as IpNet
const V4: TrafficIntent = { family: 4, network: cidr('10.5.0.0/16'), subnet: cidr('10.5.1.0/24'), masq: true, forward: true, randomFully: true }

test('nft rules follow flannel, including the != POD difference in rule 4', () => {
  assert.deepEqual(nftRules(V4).postrtg, [
    'meta mark 0x00004000 return',
    'ip saddr 10.5.1.0/24 ip daddr 10.5.0.0/16 return',
    'ip saddr 10.5.0.0/16 ip daddr 10.5.1.0/24 return',
    'ip saddr != 10.5.1.0/24 ip daddr 10.5.0.0/16 return',
    'ip saddr 10.5.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random',
    'ip saddr != 10.5.0.0/16 ip daddr 10.5.0.0/16 masquerade fully-random',
  ])
  assert.deepEqual(nftRules({ ...V4, family: 6, network: cidr('fd00::/56'), subnet: cidr('fd00:0:0:1::/64') }).forward, [
    'ip6 saddr fd00::/56 accept',
    'ip6 daddr fd00::/56 accept',
  ])
})

test('payload is one transaction that flushes each chain before filling it', () => {
  const lines = nftPayload(V4).trim().split('\n')
  assert.equal(lines[0], 'add table ip flannel-ipv4 { comment "rules for flannel-ipv4" ; }')
  const flush = lines.indexOf('flush chain ip flannel-ipv4 postrtg')
  assert.ok(flush > 0 && lines[flush + 1] === 'add rule ip flannel-ipv4 postrtg meta mark 0x00004000 return')
  assert.ok(lines.includes('flush chain ip flannel-ipv4 forward'))
  assert.ok(!nftPayload({ ...V4, randomFully: false }).includes('fully-random'))
})

const LISTED = `table ip flannel-ipv4 {
\tcomment "rules for flannel-ipv4"
\tchain postrtg {
\t\tcomment "chain to manage traffic masquerading by flannel"
\t\ttype nat hook postrouting priority srcnat; policy accept;
${nftRules(V4).postrtg.map((r) => `\t\t${r}`).join('\n')}
\t}

\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
${nftRules(V4).forward.map((r) => `\t\t${r}`).join('\n')}
\t}
}
`

test('check compares listed rules and spots a removed one', async () => {
  let listing = LISTED
  const run: CommandRunner = async () => ({ code: 0, stdout: listing, stderr: '' })
  const fw = new NfTablesFirewall(run, silentLogger)
  assert.equal(await fw.check(V4), true)
  listing = LISTED.replace('\t\tip saddr 10.5.0.0/16 accept\n', '')
  assert.equal(await fw.check(V4), false)
  assert.equal(parseNftList(listing).get('forward')?.length, 1)
})

test('fully-random probe is a dry run and its answer is cached', async () => {
  const calls: string[][] = []
  const run: CommandRunner = async (_f, args) => {
    calls.push([...args])
    return { code: 1, stdout: '', stderr: 'Error: syntax error' }
  }
  const fw = new NfTablesFirewall(run, silentLogger)
  assert.equal(await fw.supportsRandomFully(4), false)
  assert.equal(await fw.supportsRandomFully(4), false)
  assert.deepEqual(calls, [['--check', '-f', '-']])
})

test('cleanup is a no-op without the nft binary, and idempotent add+delete otherwise', async () => {
  const calls: { args: readonly string[]; input?: string }[] = []
  let code = 127
  const run: CommandRunner = async (_f, args, input) => {
    calls.push(input === undefined ? { args } : { args, input })
    return { code, stdout: '', stderr: '' }
  }
  const fw = new NfTablesFirewall(run, silentLogger)
  await fw.cleanup([4, 6])
  assert.deepEqual(calls.map((c) => c.args), [['--version']])
  code = 0
  calls.length = 0
  await fw.cleanup([6])
  assert.equal(calls[1]?.input, 'add table ip6 flannel-ipv6\ndelete table ip6 flannel-ipv6\n')
})
