import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, stat, writeFile, readFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseDotEnv, parseSubnetEnv, readSubnetFileSync, renderSubnetEnv, writeSubnetFile } from '../../../src/subnet/subnet-file.ts'
import { formatCidr, parseCidr } from '../../../src/ip/ip.ts'
import { isWeftError } from '../../../src/errors.ts'

const cidr = (s: string) => parseCidr(s)!

test('IPv4: flannel variables in order, FLANNEL_SUBNET is the first usable address', () => {
  assert.equal(renderSubnetEnv({ ipv4Network: cidr('10.5.0.0/16'), ipv4Subnet: cidr('10.5.72.0/24'), mtu: 1450, ipMasq: true }),
    'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n')
})

test('dual stack and IPv6 only', () => {
  const dual = { ipv4Network: cidr('10.42.0.0/16'), ipv4Subnet: cidr('10.42.0.0/24'), ipv6Network: cidr('2001:cafe:42::/56'), ipv6Subnet: cidr('2001:cafe:42::/64'), mtu: 1450, ipMasq: false }
  assert.equal(renderSubnetEnv(dual),
    'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n')
  assert.equal(renderSubnetEnv({ ipv6Network: cidr('fc00::/48'), ipv6Subnet: cidr('fc00:0:0:7::/64'), mtu: 1500, ipMasq: false }),
    'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n')
})

test('render refuses half a family, a wrong family, or a bad MTU', () => {
  const bad = [
    { ipv4Network: cidr('10.5.0.0/16'), mtu: 1450, ipMasq: false },
    { ipv4Network: cidr('fc00::/48'), ipv4Subnet: cidr('fc00::/64'), mtu: 1450, ipMasq: false },
    { ipv4Network: cidr('10.5.0.0/16'), ipv4Subnet: cidr('10.5.1.0/24'), mtu: 0, ipMasq: false },
  ]
  for (const v of bad) assert.throws(() => renderSubnetEnv(v), (e: unknown) => isWeftError(e, 'INVALID_INPUT'))
})

test('parse round-trips render, masking host bits of the subnets', () => {
  const text = renderSubnetEnv({ ipv4Network: cidr('10.5.0.0/16'), ipv4Subnet: cidr('10.5.72.0/24'), ipv6Network: cidr('fc00::/48'), ipv6Subnet: cidr('fc00:0:0:3::/64'), mtu: 1450, ipMasq: true })
  const prev = parseSubnetEnv(text)
  assert.equal(formatCidr(prev.ipv4Network!), '10.5.0.0/16')
  assert.equal(formatCidr(prev.ipv4Subnet!), '10.5.72.0/24')
  assert.equal(formatCidr(prev.ipv6Network!), 'fc00::/48')
  assert.equal(formatCidr(prev.ipv6Subnet!), 'fc00:0:0:3::/64')
  assert.equal(prev.mtu, 1450)
  assert.equal(prev.ipMasq, true)
})

test('parse skips invalid CIDRs, comma lists and wrong families', () => {
  const prev = parseSubnetEnv('FLANNEL_NETWORK=10.42.0.0/16,192.168.0.0/16\nFLANNEL_SUBNET=not-a-cidr\nFLANNEL_IPV6_NETWORK=10.1.0.0/16\nFLANNEL_IPV6_SUBNET=fd00::1/64\nFLANNEL_MTU=abc\nFLANNEL_IPMASQ=yes\n')
  assert.deepEqual(Object.keys(prev), ['ipv6Subnet'])
  assert.equal(formatCidr(prev.ipv6Subnet!), 'fd00::/64')
  assert.deepEqual(parseSubnetEnv(''), {})
})

test('dotenv syntax: export, quotes, comments, colon form, later wins', () => {
  assert.deepEqual(parseDotEnv([
    '# comment', '', 'export A=1', 'B = "x y" # c', "C='lit\\n'", 'D: 4', 'E=5 # inline', 'F=a#b', 'G="q\\"\\n"', 'A=2', 'not a line', 'H=',
  ].join('\n')), { A: '2', B: 'x y', C: 'lit\\n', D: '4', E: '5', F: 'a#b', G: 'q"\n', H: '' })
  assert.equal(formatCidr(parseSubnetEnv('export FLANNEL_SUBNET="10.1.2.1/24"\r\n').ipv4Subnet!), '10.1.2.0/24')
})

test('writeSubnetFile creates parents, writes atomically with mode 0644, and replaces', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-subnet-'))
  const oldMask = process.umask(0o077)
  try {
    const path = join(dir, 'run', 'flannel', 'subnet.env')
    assert.equal(readSubnetFileSync(path), undefined)
    await writeSubnetFile(path, 'FLANNEL_MTU=1\n')
    assert.equal(readSubnetFileSync(path), 'FLANNEL_MTU=1\n')
    assert.equal((await stat(path)).mode & 0o777, 0o644)
    assert.equal((await stat(join(dir, 'run', 'flannel'))).isDirectory(), true)
    await chmod(path, 0o600)
    await writeSubnetFile(path, 'FLANNEL_MTU=2\n')
    assert.equal(await readFile(path, 'utf8'), 'FLANNEL_MTU=2\n')
    assert.equal((await stat(path)).mode & 0o777, 0o644)
    assert.deepEqual(await readdir(join(dir, 'run', 'flannel')), ['subnet.env'], 'no temp file left behind')
  } finally {
    process.umask(oldMask)
    await rm(dir, { recursive: true, force: true })
  }
})

test('writeSubnetFile leaves the old file and no temp file when the rename fails', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-subnet-'))
  try {
    // A directory at the target path makes rename fail (EISDIR / ENOTEMPTY).
    const path = join(dir, 'subnet.env')
    await writeFile(join(dir, 'keep'), 'x')
    const { mkdir } = await import('node:fs/promises')
    await mkdir(join(path, 'sub'), { recursive: true })
    await assert.rejects(writeSubnetFile(path, 'FLANNEL_MTU=1\n'))
    assert.deepEqual((await readdir(dir)).sort(), ['keep', 'subnet.env'])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('readSubnetFileSync rethrows errors other than ENOENT', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-subnet-'))
  try {
    assert.throws(() => readSubnetFileSync(dir), { code: 'EISDIR' })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
