import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkBrNetfilter } from '../../../src/firewall/br-netfilter.ts'
import { MemoryLogger } from '../../../src/log/logger.ts'

test('absent sysctl file: warns with the modprobe hint and does not throw (flannel exits here)', async () => {
  const log = new MemoryLogger()
  const status = await checkBrNetfilter(async () => undefined, [4, 6], false, log)
  assert.equal(status.ok, false)
  assert.deepEqual(status.missing, ['net/bridge/bridge-nf-call-iptables', 'net/bridge/bridge-nf-call-ip6tables'])
  const w = log.find('br_netfilter is not loaded; continuing without it')[0]
  assert.match(String(w?.fields.hint), /modprobe br_netfilter/)
  assert.equal(w?.level, 'warn')
})

test('unreadable sysctl (rootless) counts as missing; 0 is reported as disabled', async () => {
  const log = new MemoryLogger()
  const status = await checkBrNetfilter(async (p) => {
    if (p.endsWith('ip6tables')) throw new Error('EACCES')
    return '0\n'
  }, [4, 6], false, log)
  assert.deepEqual(status.disabled, ['net/bridge/bridge-nf-call-iptables'])
  assert.deepEqual(status.missing, ['net/bridge/bridge-nf-call-ip6tables'])
  assert.match(String(log.find('bridged traffic bypasses iptables')[0]?.fields.hint), /net\.bridge\.bridge-nf-call-iptables=1/)
})

test('loaded and enabled: ok and silent; nftables mode skips the check', async () => {
  const log = new MemoryLogger()
  assert.equal((await checkBrNetfilter(async () => '1\n', [4], false, log)).ok, true)
  let reads = 0
  assert.equal((await checkBrNetfilter(async () => { reads++; return undefined }, [4], true, log)).ok, true)
  assert.equal(reads, 0)
  assert.equal(log.entries.length, 0)
})
