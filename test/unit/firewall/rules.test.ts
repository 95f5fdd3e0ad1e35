import { test } from 'node:test'
import assert from 'node:assert/strict'
import { forwardRules, masqRules, ruleLine } from '../../../src/firewall/rules.ts'
import { parseCidr, type IpNet } from '../../../src/ip/ip.ts'

const cidr = (s: string): IpNet => parseCidr(s) as IpNet

// flannel reference §7, NET=10.5.0.0/16 POD=10.5.1.0/24
const GOLDEN_V4 = [
  '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.5.1.0/24 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.5.0.0/16 -d 10.5.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.5.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  '-A FLANNEL-POSTRTG ! -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
]

test('IPv4 masquerade rules match flannel line for line', () => {
  const rules = masqRules(4, cidr('10.5.0.0/16'), cidr('10.5.1.0/24'), true)
  assert.deepEqual(rules.map(ruleLine), GOLDEN_V4)
  assert.ok(rules.every((r) => r.table === 'nat'))
})

test('without random-fully the MASQUERADE targets carry no option', () => {
  const lines = masqRules(4, cidr('10.5.0.0/16'), cidr('10.5.1.0/24'), false).map(ruleLine)
  assert.equal(lines.filter((l) => l.includes('--random-fully')).length, 0)
  assert.ok(lines[5]?.endsWith('-j MASQUERADE'))
})

test('IPv6 masquerade rules use ff00::/8 as the multicast exception', () => {
  const lines = masqRules(6, cidr('fd00:10::/56'), cidr('fd00:10:0:1::/64'), true).map(ruleLine)
  assert.equal(lines[2], '-A FLANNEL-POSTRTG -s fd00:10:0:1::/64 -d fd00:10::/56 -m comment --comment "flanneld masq" -j RETURN')
  assert.equal(lines[5], '-A FLANNEL-POSTRTG -s fd00:10::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully')
})

test('forward rules match flannel', () => {
  assert.deepEqual(forwardRules(cidr('10.5.0.0/16')).map(ruleLine), [
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-A FLANNEL-FWD -s 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    '-A FLANNEL-FWD -d 10.5.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
  ])
  assert.ok(forwardRules(cidr('10.5.0.0/16')).every((r) => r.table === 'filter'))
})
