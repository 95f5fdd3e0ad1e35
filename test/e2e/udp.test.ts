/**
 * udp backend end to end (issue 5): three hosts running the built weftd with Backend udp.
 * flannel0 and the lease as flannel makes them; pod-to-pod ping matrix; a TCP transfer whose
 * sha256 is checked at the far end; ICMP net unreachable for an address with no lease; TTL seen
 * in a capture of the underlay; malformed packets and a junk flood on port 8285 during a
 * transfer (transfer completes, drops counted, daemon alive).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createTestbed, type Testbed, type TestHost } from '../helpers/testbed.ts'
import { addPod, type Pod } from '../helpers/pods.ts'
import { pingUntil } from '../helpers/netns.ts'
import { eventually, startWeftdReady, type WeftdRun } from '../helpers/weftd.ts'

type ReadyRun = WeftdRun & { env: Record<string, string> }

const skip = process.getuid?.() !== 0
  ? 'needs root (network namespaces)'
  : spawnSync('sh', ['-c', 'command -v etcd && command -v tcpdump && command -v ping'], { stdio: 'ignore' }).status !== 0
    ? 'needs etcd, tcpdump and ping'
    : false

const UDP_CONFIG = { Network: '10.5.0.0/16', Backend: { Type: 'udp' } }
const NODE = process.execPath

/** A TCP sink printing `<bytes> <sha256>` of what it received, then exiting. */
const SINK = `
const net = require('node:net'), crypto = require('node:crypto')
const srv = net.createServer((s) => { const h = crypto.createHash('sha256'); let n = 0
  s.on('data', (d) => { h.update(d); n += d.length }); s.on('end', () => { console.log(n, h.digest('hex')); srv.close() }) })
srv.listen(5201, () => console.log('listening'))
`
/** Sends `bytes` of seeded pseudo-random data and prints `<bytes> <sha256>` of what it sent. */
const SOURCE = `
const net = require('node:net'), crypto = require('node:crypto')
const [host, total] = [process.argv[1], Number(process.argv[2])]
const h = crypto.createHash('sha256'); let sent = 0
const s = net.connect(5201, host, () => { const pump = () => { while (sent < total) { const b = crypto.randomBytes(Math.min(65536, total - sent)); h.update(b); sent += b.length; if (!s.write(b)) return void s.once('drain', pump) } s.end(() => console.log(sent, h.digest('hex'))) }; pump() })
s.setTimeout(60000, () => { console.error('timeout'); process.exit(1) })
`

async function transfer(from: Pod, to: Pod, bytes: number): Promise<{ sent: string; received: string }> {
  const sink = to.host.testbed.spawn(to.netns, [NODE, '-e', SINK])
  await eventually('sink listening', async () => sink.output().includes('listening'), 5000)
  const src = await from.run([NODE, '-e', SOURCE, to.ip, String(bytes)], { timeoutMs: 90_000 })
  await Promise.race([sink.exited, new Promise((r) => setTimeout(r, 10_000))])
  return { sent: src.stdout.trim(), received: sink.output().replace('listening', '').trim() }
}

interface Cluster {
  bed: Testbed
  runs: ReadyRun[]
  pods: Pod[]
}

async function startCluster(bed: Testbed, extra: readonly string[] = []): Promise<Cluster> {
  await bed.putNetworkConfig(UDP_CONFIG)
  const runs: ReadyRun[] = []
  const pods: Pod[] = []
  for (const host of bed.hosts) {
    const run = await startWeftdReady(bed, host, extra)
    runs.push(run)
    pods.push(await addPod(host, { name: 'p', subnet: run.env.FLANNEL_SUBNET as string, mtu: Number(run.env.FLANNEL_MTU) }))
  }
  return { bed, runs, pods }
}

async function stopAll(c: Cluster): Promise<string[]> {
  const out: string[] = []
  for (const r of c.runs) {
    await r.proc.stop()
    out.push(r.proc.output())
  }
  return out
}

/** Parses a pcap (Ethernet) and returns the UDP payloads with their ports. */
function udpPayloads(file: string): Array<{ sport: number; dport: number; payload: Buffer }> {
  const buf = readFileSync(file)
  const out: Array<{ sport: number; dport: number; payload: Buffer }> = []
  for (let off = 24; off + 16 <= buf.length;) {
    const caplen = buf.readUInt32LE(off + 8)
    const frame = buf.subarray(off + 16, off + 16 + caplen)
    off += 16 + caplen
    if (frame.readUInt16BE(12) !== 0x0800 || frame[23] !== 17) continue
    const ihl = ((frame[14] as number) & 15) * 4
    const udp = 14 + ihl
    out.push({ sport: frame.readUInt16BE(udp), dport: frame.readUInt16BE(udp + 2), payload: frame.subarray(udp + 8) })
  }
  return out
}

function headerChecksumOk(ip: Buffer): boolean {
  let sum = 0
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return sum === 0xffff
}

test('udp: flannel0, lease, ping matrix, TCP transfer, net unreachable, TTL in a capture', { skip, timeout: 180_000 }, async (ctx) => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    const c = await startCluster(bed)
    const [h1, h2] = bed.hosts as [TestHost, TestHost, TestHost]
    const [p1, p2, p3] = c.pods as [Pod, Pod, Pod]

    // Lease as flannel writes it for udp: PublicIP only.
    const leases = await bed.getLeases()
    assert.equal(leases.length, 3)
    for (const l of leases) assert.deepEqual(Object.keys(l.attrs).filter((k) => l.attrs[k] !== null).sort(), ['PublicIP'], JSON.stringify(l.attrs))
    assert.equal(c.runs[0]!.env.FLANNEL_MTU, '1472', 'underlay 1500 − 28')

    // flannel0: TUN without packet info, <subnet network>/32, MTU, route for the Network.
    const link = (await h1.exec('ip', '-d', 'link', 'show', 'flannel0')).stdout
    assert.match(link, /mtu 1472/)
    assert.match(link, /tun type tun pi off/)
    const subnet1 = c.runs[0]!.env.FLANNEL_SUBNET as string
    const net1 = subnet1.replace(/\.1\/24$/, '.0')
    assert.match((await h1.exec('ip', '-4', 'addr', 'show', 'flannel0')).stdout, new RegExp(`inet ${net1.replace(/\./g, '\\.')}/32`))
    assert.match((await h1.exec('ip', 'route', 'show', '10.5.0.0/16')).stdout, /10\.5\.0\.0\/16 dev flannel0/)

    // Ping matrix.
    for (const a of c.pods) {
      for (const b of c.pods) {
        if (a === b) continue
        const r = await pingUntil(a.netns, b.ip, { timeoutMs: 10_000 })
        assert.ok(r.ok, `${a.host.name} → ${b.host.name}: ${r.lastOutput}`)
      }
    }
    // TTL: 64 − (h1 forward, h1 proxy, h2 proxy, h2 forward) = 60 at the far pod, and back.
    const ttl = await p1.exec('ping', '-n', '-c1', '-W2', p2.ip)
    assert.match(ttl.stdout, /ttl=60/)

    // Capture on h2's underlay: wire format = raw IPv4 in UDP 8285 → 8285; inner TTL 62 leaving h1.
    const pcap = join(bed.workDir, 'h2.pcap')
    const cap = bed.spawn(h2.netns, ['tcpdump', '-n', '-U', '-i', 'eth0', '-c', '4', '-w', pcap, 'udp port 8285'])
    await new Promise((r) => setTimeout(r, 1000))
    await p1.exec('ping', '-n', '-c2', '-i0.2', '-W2', p2.ip)
    await Promise.race([cap.exited, new Promise((r) => setTimeout(r, 5000))])
    const grams = udpPayloads(pcap)
    assert.ok(grams.length >= 2, `captured ${grams.length} datagrams`)
    const request = grams.find((g) => g.payload[9] === 1 && g.payload[20] === 8)
    assert.ok(request, 'echo request captured')
    assert.equal(request.sport, 8285)
    assert.equal(request.dport, 8285)
    assert.equal(request.payload[8], 62, 'inner TTL after the kernel and the sending proxy')
    assert.equal(request.payload.readUInt16BE(2), request.payload.length, 'payload is exactly the IP packet')
    assert.ok(headerChecksumOk(request.payload), 'inner header checksum valid after the TTL patch')
    assert.deepEqual([...request.payload.subarray(12, 16)].join('.'), p1.ip)

    // TTL expiry: TTL 2 leaves h1's kernel with 1, the proxy drops it.
    const expired = await p1.run(['ping', '-n', '-c1', '-W1', '-t', '2', p2.ip], { allowFailure: true })
    assert.notEqual(expired.code, 0)

    // Net unreachable for an address in the Network without a lease, from flannel0's address.
    const unreach = await p1.run(['ping', '-n', '-c1', '-W2', '10.5.250.9'], { allowFailure: true })
    assert.match(unreach.stdout, new RegExp(`From ${net1.replace(/\./g, '\\.')} icmp_seq=1 Destination Net Unreachable`), unreach.stdout)

    // TCP transfer, checksum verified end to end, while peers come and go (lease churn).
    let transferring = true
    let cycles = 0
    const churn = (async () => {
      for (let i = 0; transferring || i < 2; i++) {
        const key = `/coreos.com/network/subnets/10.5.${200 + (i % 50)}.0-24`
        await bed.etcdctl('put', key, JSON.stringify({ PublicIP: `10.200.0.${100 + (i % 50)}` }))
        await bed.etcdctl('del', key)
        if (transferring) cycles++
      }
    })()
    const t = await transfer(p1, p3, 32 << 20)
    transferring = false
    await churn
    assert.ok(cycles >= 1, 'at least one peer added and removed during the transfer')
    await eventually('the churned peers came and went on h1', async () => (c.runs[0]!.proc.output().match(/subnet removed/g) ?? []).length >= 2, 5000)
    ctx.diagnostic(`${cycles} peer add/remove cycles during the transfer`)
    assert.match(t.sent, /^33554432 [0-9a-f]{64}$/)
    assert.equal(t.received, t.sent)
    ctx.diagnostic(`transfer ${t.sent}`)

    // flannel0 deleted under the daemon: recreated, forwarding resumes.
    await h1.exec('ip', 'link', 'del', 'flannel0')
    const back = await pingUntil(p1.netns, p2.ip, { timeoutMs: 15_000 })
    assert.ok(back.ok, `ping after flannel0 was deleted: ${back.lastOutput}\n${c.runs[0]!.proc.output()}`)
    assert.match(c.runs[0]!.proc.output(), /flannel0 is gone; recreating it/)
    ctx.diagnostic(`flannel0 recreated; ping answered after ${back.attempts} attempts`)

    const outputs = await stopAll(c)
    assert.match(outputs[0]!, /udp data path stopped/)
    assert.match(outputs[0]!, /drop_ttl[=:" ]+1\b/, outputs[0])
    assert.match(outputs[0]!, /drop_noRoute/)
  } finally {
    await bed.destroy()
  }
})

test('udp: malformed packets and a junk flood on 8285 during a transfer are dropped and counted', { skip, timeout: 180_000 }, async (ctx) => {
  const bed = await createTestbed({ hosts: 3 })
  try {
    const c = await startCluster(bed, ['--healthz-ip=127.0.0.1', '--healthz-port=8471'])
    const [p1, p2] = c.pods as [Pod, Pod, Pod]
    const h3 = bed.hosts[2]!
    const target = bed.hosts[1]!.underlayIp
    assert.ok((await pingUntil(p1.netns, p2.ip)).ok)
    // From a peer's address (known source): short, bad IHL, bad total length, not for h2's subnet.
    const MALFORMED = `
const s = require('node:dgram').createSocket('udp4')
const ok = Buffer.alloc(40); ok[0] = 0x45; ok.writeUInt16BE(40, 2); ok[8] = 64; ok[9] = 17; ok.set([10,5,3,2], 12)
const bad = [Buffer.alloc(10, 0x45), Buffer.from(ok).fill(0x41, 0, 1), Buffer.from(ok).fill(0, 2, 4),
  Buffer.concat([ok.subarray(0, 16), Buffer.from([10, 99, 0, 1]), ok.subarray(20)])]
let i = 0; const next = () => i < bad.length * 5 ? s.send(bad[i++ % bad.length], 8285, process.argv[1], next) : s.close(); next()`
    await h3.exec(NODE, '-e', MALFORMED, target)
    // From an address that is no peer's: a flood of random datagrams for ~3 s while a transfer runs.
    const FLOOD = `
const s = require('node:dgram').createSocket('udp4'), crypto = require('node:crypto')
const end = Date.now() + 3000; let n = 0
const burst = () => { if (Date.now() > end) { console.log(n); return s.close() } let k = 0; const go = () => { if (k++ >= 64) return setImmediate(burst); n++; s.send(crypto.randomBytes(20 + (n % 1400)), 8285, process.argv[1], go) }; go() }
burst()`
    // The control plane (main event loop) answers /healthz promptly throughout.
    const PROBE = `
const end = Date.now() + 4000; let worst = 0, n = 0
const tick = async () => { const t0 = Date.now(); const r = await fetch('http://127.0.0.1:8471/healthz'); await r.text(); worst = Math.max(worst, Date.now() - t0); n++
  if (Date.now() < end) setTimeout(tick, 100); else console.log(n, worst) }
tick()`
    const probe = bed.exec(bed.hosts[1]!.netns, NODE, '-e', PROBE)
    const flood = bed.exec(bed.etcdNetns, NODE, '-e', FLOOD, target)
    const t = await transfer(p1, p2, 16 << 20)
    const [probes, worstMs] = (await probe).stdout.trim().split(' ').map(Number) as [number, number]
    assert.ok(probes >= 10, `healthz probed ${probes} times`)
    assert.ok(worstMs < 1000, `slowest /healthz answer during the flood: ${worstMs} ms`)
    const flooded = Number((await flood).stdout.trim())
    assert.ok(flooded > 1000, `flood sent ${flooded} datagrams`)
    assert.equal(t.received, t.sent, 'transfer intact under the flood')
    assert.ok(c.runs[1]!.proc.isRunning(), 'daemon alive')
    assert.ok((await pingUntil(p2.netns, p1.ip)).ok, 'still forwarding')
    const outputs = await stopAll(c)
    const h2 = outputs[1]!
    for (const reason of ['short', 'badIhl', 'badLength', 'notLocal', 'unknownSource']) assert.match(h2, new RegExp(`drop_${reason}`), `${reason} counted:\n${h2}`)
    const unknown = Number(/drop_unknownSource[=:" ]+(\d+)/.exec(h2)?.[1])
    assert.ok(unknown > 500, `unknown-source drops counted (${unknown})`)
    ctx.diagnostic(`flood ${flooded} datagrams, ${unknown} counted as unknown-source; /healthz ${probes} probes, slowest ${worstMs} ms`)
  } finally {
    await bed.destroy()
  }
})
