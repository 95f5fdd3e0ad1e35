import { test } from 'node:test'
import assert from 'node:assert/strict'
import { KubeSubnetManager } from '../../../../src/subnet/kube/kube-subnet-manager.ts'
import { annotationNames } from '../../../../src/subnet/kube/annotations.ts'
import { KubeApiError } from '../../../../src/subnet/kube/kube-api.ts'
import { parseNetworkConfig } from '../../../../src/config/parse-network-config.ts'
import { backendRegistry } from '../../../../src/backend/registry.ts'
import { FakeClock } from '../../../../src/util/clock.ts'
import { MemoryLogger } from '../../../../src/log/logger.ts'
import { isWeftError } from '../../../../src/errors.ts'
import { formatCidr, parseIp, type IpAddr, type IpNet } from '../../../../src/ip/ip.ts'
import type { LeaseAttrs, LeaseWatchResult } from '../../../../src/lease/lease.ts'
import { MemoryKubeApi } from './memory-kube-api.ts'

const P = 'flannel.alpha.coreos.com/'
const names = annotationNames('flannel.alpha.coreos.com')
const ip = (t: string): IpAddr => parseIp(t) as IpAddr
const vxlanAttrs = (pub: string, mac = '0a:00:00:00:00:01'): LeaseAttrs => ({ publicIP: ip(pub), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } })
const peerAnnotations = (pub: string, mac: string): Record<string, string> => ({
  [`${P}kube-subnet-manager`]: 'true', [`${P}backend-type`]: 'vxlan', [`${P}public-ip`]: pub, [`${P}backend-data`]: `{"VNI":1,"VtepMAC":"${mac}"}`,
})

function setup(opts: { network?: string; setCondition?: boolean } = {}) {
  const api = new MemoryKubeApi()
  const clock = new FakeClock()
  const logger = new MemoryLogger()
  const config = parseNetworkConfig(`{"Network":"${opts.network ?? '10.244.0.0/16'}","Backend":{"Type":"vxlan"}}`, backendRegistry, { mode: 'kube' }).config
  const waiting: Array<string | undefined> = []
  const sm = new KubeSubnetManager({
    api, nodeName: 'n1', names, config, logger, clock, setNodeNetworkUnavailable: opts.setCondition ?? true,
    onWaiting: (r) => waiting.push(r),
  })
  return { api, clock, logger, config, sm, waiting }
}

/** Pulls results from a watch one at a time. */
function reader(iterable: AsyncIterable<LeaseWatchResult>) {
  const it = iterable[Symbol.asyncIterator]()
  return { next: async (): Promise<LeaseWatchResult> => { const r = await it.next(); assert.ok(!r.done); return r.value }, stop: () => it.return?.() }
}

test('acquireLease: the podCIDR is the lease; annotations patched once, on nodes/status', async () => {
  const { api, sm, config } = setup()
  api.putNode('n1', { podCIDR: '10.244.3.0/24' })
  const lease = await sm.acquireLease(config, vxlanAttrs('10.200.0.1'), new AbortController().signal)
  assert.equal(formatCidr(lease.subnet as IpNet), '10.244.3.0/24')
  assert.deepEqual(api.calls.filter((c) => c.startsWith('patch')), ['patch node n1 status strategic'])
  assert.equal(api.node('n1')?.metadata.annotations?.[`${P}backend-data`], '{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}')
  // A restart with the same attributes finds nothing to change.
  const again = setup()
  again.api.putNode('n1', { podCIDR: '10.244.3.0/24' }, { ...api.node('n1')?.metadata.annotations })
  await again.sm.acquireLease(again.config, vxlanAttrs('10.200.0.1'), new AbortController().signal)
  assert.deepEqual(again.api.calls.filter((c) => c.startsWith('patch')), [])
})

test('acquireLease waits for a podCIDR, says how to fix it, and starts once it is set', async () => {
  const { api, sm, config, clock, logger, waiting } = setup()
  api.putNode('n1', {})
  const ac = new AbortController()
  let done = false
  const acquiring = sm.acquireLease(config, vxlanAttrs('10.200.0.1'), ac.signal).then((l) => { done = true; return l })
  for (let i = 0; i < 12; i++) await clock.advance(1000)
  assert.equal(done, false)
  assert.match(waiting[0] ?? '', /node "n1" has no podCIDR yet: run kube-controller-manager with --allocate-node-cidrs=true and --cluster-cidr=10.244.0.0\/16, or set spec.podCIDR/)
  const warnings = logger.entries.filter((e) => e.msg === 'waiting for a podCIDR')
  assert.ok(warnings.length >= 2 && warnings.length <= 4, `logged every few seconds, not every poll: ${warnings.length}`)
  api.putNode('n1', { podCIDR: '10.244.9.0/24' })
  await clock.advance(1000)
  const lease = await acquiring
  assert.equal(formatCidr(lease.subnet as IpNet), '10.244.9.0/24')
  assert.equal(waiting.at(-1), undefined)
})

test('acquireLease: a podCIDR outside Network is refused with flannel\'s message', async () => {
  const { api, sm, config } = setup({ network: '10.5.0.0/16' })
  api.putNode('n1', { podCIDR: '10.244.3.0/24' })
  await assert.rejects(sm.acquireLease(config, vxlanAttrs('10.200.0.1'), new AbortController().signal), (err: unknown) => {
    assert.ok(isWeftError(err, 'CONFIG_INVALID'))
    assert.match(err.message, /subnet "10.5.0.0\/16" specified in the flannel net config doesn't contain "10.244.3.0\/24" PodCIDR of the "n1" node/)
    return true
  })
})

test('acquireLease: 401 is fatal at once; a missing node and 500s are waited out', async () => {
  const denied = setup()
  denied.api.failNext.push(new KubeApiError(401, 'Unauthorized', 'kube API https://kube.test:6443: GET nodes/n1: 401 Unauthorized'))
  await assert.rejects(denied.sm.acquireLease(denied.config, vxlanAttrs('10.200.0.1'), new AbortController().signal), (err: unknown) => isWeftError(err, 'REGISTRY_DENIED'))

  const { api, sm, config, clock } = setup()
  api.failNext.push(new KubeApiError(500, 'InternalError', 'boom'))
  const acquiring = sm.acquireLease(config, vxlanAttrs('10.200.0.1'), new AbortController().signal)
  for (let i = 0; i < 5; i++) await clock.advance(2000)
  api.putNode('n1', { podCIDR: '10.244.4.0/24' })
  for (let i = 0; i < 5; i++) await clock.advance(2000)
  assert.equal(formatCidr((await acquiring).subnet as IpNet), '10.244.4.0/24')
})

test('watchLeases: snapshot of managed peers (not us, not unmanaged), then add, change, delete', async () => {
  const { api, sm, config, logger } = setup()
  api.putNode('n1', { podCIDR: '10.244.1.0/24' })
  api.putNode('n2', { podCIDR: '10.244.2.0/24' }, peerAnnotations('10.200.0.2', '0a:00:00:00:00:02'))
  api.putNode('plain', { podCIDR: '10.244.7.0/24' })
  const own = await sm.acquireLease(config, vxlanAttrs('10.200.0.1'), new AbortController().signal)
  const ac = new AbortController()
  const w = reader(sm.watchLeases(own, ac.signal))
  const first = await w.next()
  assert.equal(first.kind, 'snapshot')
  assert.deepEqual(first.kind === 'snapshot' && first.leases.map((l) => formatCidr(l.subnet as IpNet)), ['10.244.2.0/24'])

  api.putNode('n3', { podCIDR: '10.244.3.0/24' }, peerAnnotations('10.200.0.3', '0a:00:00:00:00:03'))
  const added = await w.next()
  assert.deepEqual(added.kind === 'events' && added.events.map((e) => e.type), ['added'])

  // A heartbeat-like change that leaves the lease as it was reports nothing; the next real change does.
  api.putNode('n3', { podCIDR: '10.244.3.0/24' }, { ...peerAnnotations('10.200.0.3', '0a:00:00:00:00:03'), unrelated: 'x' })
  api.putNode('n3', { podCIDR: '10.244.3.0/24' }, peerAnnotations('10.200.0.3', '0a:00:00:00:00:33'))
  const changed = await w.next()
  assert.ok(changed.kind === 'events' && changed.events.length === 1, JSON.stringify(changed, (_k, v) => typeof v === 'bigint' ? String(v) : v))
  assert.deepEqual(changed.events[0]?.lease.attrs.backendData, { VNI: 1, VtepMAC: '0a:00:00:00:00:33' })

  // Bad data from another node: skipped with a warning, and withdrawn if it was a peer.
  api.putNode('n3', { podCIDR: '10.244.3.0/24' }, { ...peerAnnotations('10.200.0.3', '0a:00:00:00:00:33'), [`${P}public-ip`]: 'garbage' })
  const withdrawn = await w.next()
  assert.deepEqual(withdrawn.kind === 'events' && withdrawn.events.map((e) => e.type), ['removed'])
  assert.ok(logger.entries.some((e) => e.msg === 'skipping node with unusable flannel data' && /garbage/.test(String(e.fields?.['reason']))))

  api.deleteNode('n2')
  const deleted = await w.next()
  assert.ok(deleted.kind === 'events' && deleted.events[0]?.type === 'removed' && formatCidr(deleted.events[0].lease.subnet as IpNet) === '10.244.2.0/24')
  ac.abort()
  await w.stop()
})

test('watchLeases: 410 Expired re-lists and yields a snapshot; a dropped stream resumes without a list', async () => {
  const { api, sm, config, clock } = setup()
  api.putNode('n1', { podCIDR: '10.244.1.0/24' })
  api.putNode('n2', { podCIDR: '10.244.2.0/24' }, peerAnnotations('10.200.0.2', '0a:00:00:00:00:02'))
  const own = await sm.acquireLease(config, vxlanAttrs('10.200.0.1'), new AbortController().signal)
  const ac = new AbortController()
  const w = reader(sm.watchLeases(own, ac.signal))
  await w.next()
  const listsBefore = api.calls.filter((c) => c.startsWith('list')).length

  api.endWatches(new KubeApiError(0, 'ECONNRESET', 'connection reset'))
  api.putNode('n4', { podCIDR: '10.244.4.0/24' }, peerAnnotations('10.200.0.4', '0a:00:00:00:00:04'))
  const pending = w.next()
  for (let i = 0; i < 3; i++) await clock.advance(200)
  const resumed = await pending
  assert.deepEqual(resumed.kind === 'events' && resumed.events.map((e) => e.type), ['added'])
  assert.equal(api.calls.filter((c) => c.startsWith('list')).length, listsBefore, 'no re-list after a plain disconnect')

  // History compacted while a node was deleted: the re-list's snapshot no longer holds it.
  api.endWatches(new KubeApiError(0, 'ECONNRESET', 'connection reset'))
  api.deleteNode('n2')
  api.compact()
  const again = w.next()
  for (let i = 0; i < 3; i++) await clock.advance(200)
  const snapshot = await again
  assert.equal(snapshot.kind, 'snapshot')
  assert.deepEqual(snapshot.kind === 'snapshot' && snapshot.leases.map((l) => formatCidr(l.subnet as IpNet)), ['10.244.4.0/24'])
  ac.abort()
  await w.stop()
})

test('completeLease sets NetworkUnavailable=False with flannel\'s reason, once; off with the flag', async () => {
  const { api, sm, config } = setup()
  api.putNode('n1', { podCIDR: '10.244.1.0/24' })
  const lease = await sm.acquireLease(config, vxlanAttrs('10.200.0.1'), new AbortController().signal)
  await sm.completeLease(lease, new AbortController().signal)
  const cond = api.node('n1')?.status?.conditions?.find((c) => c.type === 'NetworkUnavailable')
  assert.equal(cond?.status, 'False')
  assert.equal(cond?.reason, 'FlannelIsUp')
  assert.equal(cond?.message, 'Flannel is running on this node')
  assert.match(cond?.lastTransitionTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)

  const off = setup({ setCondition: false })
  off.api.putNode('n1', { podCIDR: '10.244.1.0/24' })
  const l2 = await off.sm.acquireLease(off.config, vxlanAttrs('10.200.0.1'), new AbortController().signal)
  await off.sm.completeLease(l2, new AbortController().signal)
  assert.equal(off.api.node('n1')?.status?.conditions?.length ?? 0, 0)
})

test('listLeases gives our stored VTEP MAC with our local address (vxlan reuses it after a reboot)', async () => {
  const { api, sm } = setup()
  api.putNode('n1', { podCIDR: '10.244.1.0/24' }, { ...peerAnnotations('172.18.0.2', '0a:00:00:00:00:aa'), [`${P}public-ip-overwrite`]: '172.18.0.2' })
  sm.setLocalAddresses(ip('10.200.0.1'), undefined)
  const [mine] = await sm.listLeases(new AbortController().signal)
  assert.deepEqual(mine?.attrs.backendData, { VNI: 1, VtepMAC: '0a:00:00:00:00:aa' })
  assert.equal(mine?.attrs.publicIP?.value, ip('10.200.0.1').value)
})
