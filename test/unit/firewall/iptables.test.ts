import { test } from 'node:test'
import assert from 'node:assert/strict'
import { IpTablesFirewall, detectIpTables, parseIpTablesVersion, versionHasRandomFully } from '../../../src/firewall/iptables.ts'
import type { CommandRunner } from '../../../src/firewall/command-runner.ts'
import { MemoryLogger } from '../../../src/log/logger.ts'
import { parseCidr, type IpNet } from '../../../src/ip/ip.ts'

const cidr = (s: string): IpNet => parseCidr(s) as IpNet

test('version parsing and the --random-fully threshold', () => {
  assert.deepEqual(parseIpTablesVersion('iptables v1.8.9 (nf_tables)'), { version: [1, 8, 9], variant: 'nft' })
  assert.deepEqual(parseIpTablesVersion('iptables v1.8.7 (legacy)\n'), { version: [1, 8, 7], variant: 'legacy' })
  assert.deepEqual(parseIpTablesVersion('iptables v1.6.1'), { version: [1, 6, 1] })
  assert.equal(parseIpTablesVersion('command not found'), undefined)
  assert.equal(versionHasRandomFully([1, 6, 1]), false)
  assert.equal(versionHasRandomFully([1, 6, 2]), true)
  assert.equal(versionHasRandomFully([1, 8, 0]), true)
})

function fakeHost(defaultVariant: string, legacyRules: string, nftRules: string): CommandRunner {
  return async (file) => {
    if (file === 'iptables') return { code: 0, stdout: `iptables v1.8.9 (${defaultVariant})\n`, stderr: '' }
    if (file === 'iptables-legacy-save') return { code: 0, stdout: legacyRules, stderr: '' }
    if (file === 'iptables-nft-save') return { code: 0, stdout: nftRules, stderr: '' }
    return { code: 0, stdout: '', stderr: '' }
  }
}

test('the variant holding kube-proxy rules wins over the default, and the choice is logged', async () => {
  const log = new MemoryLogger()
  const kube = '*nat\n-A POSTROUTING -j KUBE-POSTROUTING\n-A KUBE-POSTROUTING -j MASQUERADE\nCOMMIT\n'
  const tools = await detectIpTables(fakeHost('nf_tables', kube, ''), log)
  assert.equal(tools.variant, 'legacy')
  assert.equal(tools.save[4], 'iptables-legacy-save')
  assert.equal(tools.restore[6], 'ip6tables-legacy-restore')
  const entry = log.find('iptables variant selected')[0]
  assert.equal(entry?.fields.variant, 'legacy')
  assert.equal(entry?.fields.reason, 'holds existing kube/flannel rules')
})

test('with no rules anywhere the default variant and plain binaries are used', async () => {
  const tools = await detectIpTables(fakeHost('nf_tables', '', ''), new MemoryLogger())
  assert.equal(tools.variant, 'nft')
  assert.equal(tools.save[4], 'iptables-save')
})

test('a missing iptables is a FIREWALL_OP_FAILED error with a hint', async () => {
  const run: CommandRunner = async () => ({ code: 127, stdout: '', stderr: 'not found' })
  await assert.rejects(detectIpTables(run, new MemoryLogger()), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FIREWALL_OP_FAILED')
    assert.match(err.message, /EnableNFTables/)
    return true
  })
})

test('apply is one iptables-restore --noflush --wait; check is one iptables-save', async () => {
  const calls: { file: string; args: readonly string[]; input?: string }[] = []
  let saved = '*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n'
  const run: CommandRunner = async (file, args, input) => {
    calls.push(input === undefined ? { file, args } : { file, args, input })
    if (file === 'iptables-save') return { code: 0, stdout: saved, stderr: '' }
    return { code: 0, stdout: '', stderr: '' }
  }
  const fw = new IpTablesFirewall(run, { variant: 'nft', version: [1, 8, 9], save: { 4: 'iptables-save', 6: 'ip6tables-save' }, restore: { 4: 'iptables-restore', 6: 'ip6tables-restore' } }, new MemoryLogger())
  const intent = { family: 4 as const, network: cidr('10.5.0.0/16'), subnet: cidr('10.5.1.0/24'), masq: true, forward: true, randomFully: true }
  await fw.apply(intent)
  const restores = calls.filter((c) => c.file === 'iptables-restore')
  assert.equal(restores.length, 1)
  assert.deepEqual(restores[0]?.args, ['--noflush', '--wait'])
  calls.length = 0
  assert.equal(await fw.check(intent), false)
  saved = restores[0]?.input ?? ''
  assert.equal(await fw.check(intent), true)
  assert.deepEqual(calls.map((c) => c.file), ['iptables-save', 'iptables-save'])
})

test('iptables older than 1.6.2 gets no --wait and no --random-fully', async () => {
  const calls: (readonly string[])[] = []
  const run: CommandRunner = async (file, args) => {
    if (file.endsWith('-restore')) calls.push(args)
    return { code: 0, stdout: '', stderr: '' }
  }
  const log = new MemoryLogger()
  const old = await detectIpTables(async (file) => (file === 'iptables' ? { code: 0, stdout: 'iptables v1.4.21\n', stderr: '' } : run(file, [])), log)
  assert.equal(old.variant, 'legacy')
  assert.equal(old.restore[4], 'iptables-restore')
  const fw = new IpTablesFirewall(run, old, log)
  assert.equal(await fw.supportsRandomFully(4), false)
  await fw.apply({ family: 4, network: cidr('10.5.0.0/16'), subnet: cidr('10.5.1.0/24'), masq: true, forward: false, randomFully: false })
  assert.deepEqual(calls, [['--noflush']])
})
