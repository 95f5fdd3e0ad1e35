/**
 * 5,000 peers programmed from the moment their leases are visible (one watch snapshot) until
 * every route is in the kernel: host-gw (1 route each) and vxlan (neighbour + FDB + route each).
 * Against MemoryKernel always; against LinuxKernel in a throwaway namespace when root and the
 * LinuxKernel module is present. Target: < 1 s. Writes bench/results/backends.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { hostGw } from '../src/backend/host-gw/host-gw.ts'
import { vxlan } from '../src/backend/vxlan/vxlan.ts'
import type { Backend, BackendDeps, ExternalInterface } from '../src/backend/backend.ts'
import type { Kernel } from '../src/kernel/kernel.ts'
import type { Lease } from '../src/lease/lease.ts'
import { MemoryKernel } from '../src/kernel/memory/memory-kernel.ts'
import { silentLogger } from '../src/log/logger.ts'
import { systemClock } from '../src/util/clock.ts'
import { config, FakeSubnetManager, ip, lease } from '../test/unit/backend/backend-fixtures.ts'

const PEERS = Number(process.env.WEFT_BENCH_PEERS ?? 5000)

function peers(type: string): Lease[] {
  const out: Lease[] = []
  for (let i = 0; i < PEERS; i++) {
    const n = i + 2 // 10.5.2.0/24 …; own subnet is 10.5.1.0/24
    const pub = `192.168.${Math.floor(n / 250)}.${(n % 250) + 3}`
    const mac = `0e:00:00:${((n >> 16) & 0xff).toString(16).padStart(2, '0')}:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`
    out.push(lease({ type, subnet: `10.${5 + (n >> 8)}.${n & 0xff}.0/24`, publicIP: pub, data: type === 'vxlan' ? { VNI: 1, VtepMAC: mac } : undefined }))
  }
  return out
}

async function memoryHost(): Promise<{ kernel: MemoryKernel; extIface: ExternalInterface }> {
  const kernel = new MemoryKernel()
  const dev = await kernel.openTun({ name: 'eth0' })
  await kernel.setLink(dev.index, { up: true })
  await kernel.replaceAddr({ index: dev.index, ip: ip('192.168.0.2'), prefix: 16 })
  return { kernel, extIface: { name: 'eth0', index: dev.index, mtu: 1500, ifaceAddr: ip('192.168.0.2'), extAddr: ip('192.168.0.2') } }
}

interface Result { backend: string; kernel: string; delivery: 'snapshot' | 'one event per batch'; peers: number; ms: number; removeMs: number; kernelOps: number; loadAvg1m: number }

async function measure(type: 'host-gw' | 'vxlan', kernel: Kernel, extIface: ExternalInterface, kernelName: string, countRoutes: () => Promise<number>, delivery: Result['delivery'] = 'snapshot'): Promise<Result> {
  const sm = new FakeSubnetManager({ subnet: '10.5.1.0/24' })
  const deps: BackendDeps = { subnetManager: sm, extIface, kernel, logger: silentLogger, clock: systemClock }
  const backend: Backend = type === 'vxlan'
    ? vxlan({ vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 0 }, deps)
    : hostGw({}, deps)
  const ac = new AbortController()
  const cfg = config({ v4: '10.0.0.0/8', type })
  const network = await backend.registerNetwork(cfg, ac.signal)
  const running = network.run(ac.signal)
  const leases = peers(type)
  const base = await countRoutes()
  const t0 = performance.now()
  // etcd delivers the initial listing as one snapshot; the kube manager one event per result.
  if (delivery === 'snapshot') sm.snapshot(...leases)
  else for (const l of leases) sm.added(l)
  while ((await countRoutes()) - base < PEERS) await new Promise((r) => setTimeout(r, 2))
  const ms = performance.now() - t0
  const ops = kernel instanceof MemoryKernel ? kernel.ops.length : 0
  // Removal: an empty snapshot; done when every peer route is gone.
  const routesNow = async (): Promise<number> => (await kernel.listRoutes({ family: 4 })).filter((r) => r.gateway && r.dst.prefix === 24).length
  const t1 = performance.now()
  sm.snapshot()
  while ((await routesNow()) > 0) await new Promise((r) => setTimeout(r, 20))
  const removeMs = performance.now() - t1
  ac.abort()
  await running
  return { backend: type, kernel: kernelName, delivery, peers: PEERS, ms: Math.round(ms), removeMs: Math.round(removeMs), kernelOps: ops, loadAvg1m: Number(loadavg()[0]?.toFixed(1)) }
}

const results: Result[] = []
for (const type of ['host-gw', 'vxlan'] as const) {
  const { kernel, extIface } = await memoryHost()
  let seen = 0
  const count = async (): Promise<number> => {
    // Counting through listRoutes would dominate; the ops log is append-only.
    const ops = kernel.ops
    for (let i = seen; i < ops.length; i++) if (ops[i]?.op === 'replaceRoute' && !ops[i]?.errno) countRoutes.n++
    seen = ops.length
    return countRoutes.n
  }
  const countRoutes = { n: 0 }
  results.push(await measure(type, kernel, extIface, 'memory', count))
}

if (process.getuid?.() === 0) results.push(...(await runLinux()))
else console.log('linux kernel: skipped (needs root)')

/** The same measurement against LinuxKernel, each backend in its own throwaway namespace with a veth `eth0`. */
async function runLinux(): Promise<Result[]> {
  const { LinuxKernel } = await import('../src/kernel/linux/linux-kernel.ts')
  const { addNetns, delNetnsSync, ip: ipCmd } = await import('../test/helpers/netns.ts')
  const out: Result[] = []
  for (const type of ['host-gw', 'vxlan'] as const) {
    const ns = `wb${process.pid.toString(36)}${type === 'vxlan' ? 'v' : 'h'}`
    const cleanup = (): void => delNetnsSync(ns)
    process.once('exit', cleanup)
    try {
      await addNetns(ns)
      // No dummy module here: a veth pair whose both ends live in the namespace.
      await ipCmd('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p')
      await ipCmd('-n', ns, 'link', 'set', 'eth0p', 'up')
      await ipCmd('-n', ns, 'link', 'set', 'eth0', 'up')
      await ipCmd('-n', ns, 'addr', 'add', '192.168.0.2/16', 'dev', 'eth0')
      const kernel = new LinuxKernel({ netns: ns })
      try {
        const eth0 = await kernel.getLink('eth0')
        if (!eth0) throw new Error('eth0 missing in the bench namespace')
        const extIface: ExternalInterface = { name: 'eth0', index: eth0.index, mtu: eth0.mtu, ifaceAddr: ip('192.168.0.2'), extAddr: ip('192.168.0.2') }
        // Count route notifications on a second socket: polling a 5,000-route dump would skew the figure.
        const watcher = new LinuxKernel({ netns: ns })
        const stop = new AbortController()
        const seen = new Set<bigint>()
        await watcher.subscribe(['route'], (e) => {
          if (e.kind === 'route' && e.action === 'new' && e.route.dst.prefix === 24 && e.route.gateway) seen.add(e.route.dst.addr)
        }, stop.signal)
        try {
          out.push(await measure(type, kernel, extIface, 'linux', async () => seen.size))
          // Leases arriving live (flannel's host-gw fell more than 70 s behind). Same namespace,
          // fresh start: the first run removed its routes; vxlan's device goes too.
          const dev = type === 'vxlan' ? await kernel.getLink('flannel.1') : undefined
          if (dev) await kernel.deleteLink(dev.index)
          seen.clear()
          out.push(await measure(type, kernel, extIface, 'linux', async () => seen.size, 'one event per batch'))
        } finally {
          stop.abort()
          watcher.close()
        }
      } finally {
        kernel.close()
      }
    } finally {
      cleanup()
      process.removeListener('exit', cleanup)
    }
  }
  return out
}

for (const r of results) {
  console.log(`${r.backend.padEnd(8)} ${r.kernel.padEnd(7)} ${r.delivery.padEnd(20)} ${r.peers} peers programmed in ${r.ms} ms${r.ms < 1000 ? '' : '  (over the 1 s target)'}, removed in ${r.removeMs} ms (load ${r.loadAvg1m})`)
}
mkdirSync('bench/results', { recursive: true })
writeFileSync('bench/results/backends.json', JSON.stringify({ date: new Date().toISOString(), targetMs: 1000, results }, null, 2) + '\n')
