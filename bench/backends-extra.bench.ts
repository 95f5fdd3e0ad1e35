/**
 * Pod-to-pod TCP throughput (iperf3, 1 stream) of the wireguard, extension and ipip backends
 * against vxlan in the same run, two testbed hosts with the built weftd; runs alternate backends
 * so load drifts hit all of them. wireguard runs on wireguard-go here (no kernel module); ipip
 * is skipped where the kernel has no ipip. The extension backend is configured as host-gw by
 * commands (`ip route replace $SUBNET via $PUBLIC_IP dev eth0`).
 * Needs root, etcd, iperf3 and wireguard-go. WEFT_BENCH_SECONDS (default 5), WEFT_BENCH_RUNS (3).
 * Writes bench/results/backends-extra.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { kernelHasIpip } from '../test/helpers/kernel-features.ts'
import { createTestbed, type Testbed, type TestHost } from '../test/helpers/testbed.ts'
import { addPod } from '../test/helpers/pods.ts'
import { nsExec, pingUntil } from '../test/helpers/netns.ts'
import { startWeftdReady, type ReadyWeftd } from '../test/helpers/weftd.ts'
import { SERVICE_ENV } from './service-env.ts'

const SECONDS = Number(process.env.WEFT_BENCH_SECONDS ?? 5)
const RUNS = Number(process.env.WEFT_BENCH_RUNS ?? 3)

const reason = process.getuid?.() !== 0
  ? 'needs root (network namespaces)'
  : spawnSync('sh', ['-c', 'command -v iperf3 && command -v etcd && command -v wireguard-go'], { stdio: 'ignore' }).status !== 0 ? 'needs iperf3, etcd and wireguard-go' : undefined


const backendConfig = (type: string): object => type === 'extension'
  ? { Type: 'extension', SubnetAddCommand: 'ip route replace $SUBNET via $PUBLIC_IP dev eth0', SubnetRemoveCommand: 'ip route del $SUBNET via $PUBLIC_IP dev eth0' }
  : { Type: type }

async function iperfGbits(bed: Testbed, serverNs: string, clientNs: string, addr: string): Promise<number> {
  const server = bed.spawn(serverNs, ['iperf3', '-s', '-1', '-p', '5299'])
  await new Promise((r) => setTimeout(r, 300))
  const r = await nsExec(clientNs, ['iperf3', '-c', addr, '-p', '5299', '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 })
  await Promise.race([server.exited, new Promise((res) => setTimeout(res, 3000))])
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9
}

async function measure(type: string, run: number): Promise<{ gbits: number; mtu: number }> {
  const bed = await createTestbed({ hosts: 2, prefix: `wbx${process.pid.toString(36)}${run}${type.slice(0, 2)}` })
  const runs: ReadyWeftd[] = []
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: backendConfig(type) })
    const [h1, h2] = bed.hosts as [TestHost, TestHost]
    for (const h of [h1, h2]) runs.push(await startWeftdReady(bed, h, [], { env: { ...SERVICE_ENV, WIREGUARD_KEY_FILE: join(bed.workDir, `${h.name}-wgkey`) } }))
    const mtu = Number(runs[0]!.env.FLANNEL_MTU)
    const p1 = await addPod(h1, { name: 'p1', subnet: runs[0]!.env.FLANNEL_SUBNET!, mtu })
    const p2 = await addPod(h2, { name: 'p2', subnet: runs[1]!.env.FLANNEL_SUBNET!, mtu })
    if (!(await pingUntil(p1.netns, p2.ip, { timeoutMs: 20_000 })).ok) throw new Error(`${type}: pods do not reach each other`)
    return { gbits: await iperfGbits(bed, p2.netns, p1.netns, p2.ip), mtu }
  } finally {
    for (const r of runs) await r.proc.stop()
    await bed.destroy()
  }
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number
const round = (n: number, d = 3): number => Math.round(n * 10 ** d) / 10 ** d

async function main(): Promise<void> {
  if (reason) {
    console.log(`backends-extra: skipped (${reason})`)
    return
  }
  const types = ['vxlan', 'wireguard', 'extension', ...(kernelHasIpip() ? ['ipip'] : [])]
  const figures = new Map<string, number[]>(types.map((t) => [t, []]))
  const mtus = new Map<string, number>()
  for (let i = 0; i < RUNS; i++) {
    for (const t of types) {
      const { gbits, mtu } = await measure(t, i)
      figures.get(t)!.push(gbits)
      mtus.set(t, mtu)
      console.log(`run ${i + 1} ${t}: ${gbits.toFixed(2)} Gbit/s (pod MTU ${mtu})`)
    }
  }
  const base = median(figures.get('vxlan')!)
  const results = Object.fromEntries(types.map((t) => [t, { medianGbits: round(median(figures.get(t)!), 2), runsGbits: figures.get(t)!.map((g) => round(g, 2)), podMtu: mtus.get(t), ratioToVxlan: round(median(figures.get(t)!) / base) }]))
  for (const [t, r] of Object.entries(results)) console.log(`${t}: median ${r.medianGbits} Gbit/s, ${r.ratioToVxlan} of vxlan, pod MTU ${r.podMtu}`)
  mkdirSync('bench/results', { recursive: true })
  writeFileSync('bench/results/backends-extra.json', JSON.stringify({ seconds: SECONDS, runs: RUNS, ipip: types.includes('ipip') ? 'measured' : 'skipped: the kernel has no ipip', wireguard: 'wireguard-go (userspace)', results }, null, 2) + '\n')
}

await main()
