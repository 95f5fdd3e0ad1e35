/**
 * What serving the probe row (/probes, issue 17) costs weftd in RSS. Four vxlan hosts with a
 * health port; after they settle, `weft dashboard` (in h4's namespace) reads h1's and h2's rows
 * once a second, so they probe their peers; h3's /healthz is read once a second by curl (the
 * cost of being asked anything over HTTP each second); h4 is never read. Both baselines are
 * measured in the same run, at the same moments: RSS (VmRSS) of every weftd every 2 s for 30 s.
 * Prints figures and writes bench/results/probe-row.json. Needs root.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readFileSync } from 'node:fs'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const SAMPLES = 15
const HEALTH = 8471

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }
const round = (x: number): number => Math.round(x * 10) / 10
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.log('probe-row: skipped (needs root for network namespaces)'); return }
  const { createTestbed } = await import('../test/helpers/testbed.ts')
  const { WEFT, startCluster } = await import('../test/helpers/weftd.ts')
  const bed = await createTestbed({ hosts: 4 })
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } })
    const runs = await startCluster(bed, [`--healthz-port=${HEALTH}`])
    await sleep(10_000) // past start-up and the first heap trims
    const idle = runs.map((r) => rssMiB(r.proc.pid))
    const [h1, h2, , h4] = bed.hosts
    h4!.spawn([process.execPath, WEFT, 'dashboard', '--hosts', `${h1!.underlayIp}:${HEALTH},${h2!.underlayIp}:${HEALTH}`])
    h4!.spawn(['sh', '-c', `while :; do curl -s -o /dev/null http://${bed.hosts[2]!.underlayIp}:${HEALTH}/healthz; sleep 1; done`])
    await sleep(5000)
    const probed: number[] = []
    const healthPolled: number[] = []
    const unprobed: number[] = []
    for (let i = 0; i < SAMPLES; i++) {
      probed.push(rssMiB(runs[0]!.proc.pid), rssMiB(runs[1]!.proc.pid))
      healthPolled.push(rssMiB(runs[2]!.proc.pid))
      unprobed.push(rssMiB(runs[3]!.proc.pid))
      await sleep(2000)
    }
    const result = {
      date: new Date().toISOString(),
      hosts: 4,
      backend: 'vxlan',
      idleBeforeReadsMiB: idle.map(round),
      probedMedianMiB: round(median(probed)),
      healthzPolledMedianMiB: round(median(healthPolled)),
      unprobedMedianMiB: round(median(unprobed)),
      probedMaxMiB: round(Math.max(...probed)),
      costMiB: round(median(probed) - median(unprobed)),
      costOverHealthzPolledMiB: round(median(probed) - median(healthPolled)),
      ratioToUnprobed: Math.round((median(probed) / median(unprobed)) * 1000) / 1000,
      ratioToHealthzPolled: Math.round((median(probed) / median(healthPolled)) * 1000) / 1000,
      samples: SAMPLES,
    }
    writeFileSync(join(REPO, 'bench', 'results', 'probe-row.json'), JSON.stringify(result, null, 2) + '\n')
    console.log(`probe row: weftd read once a second (probing 3 peers) median ${result.probedMedianMiB} MiB (max ${result.probedMaxMiB}); /healthz read once a second ${result.healthzPolledMedianMiB} MiB; never read ${result.unprobedMedianMiB} MiB; cost ${result.costMiB} MiB over unread (ratio ${result.ratioToUnprobed}), ${result.costOverHealthzPolledMiB} MiB over /healthz-polled (ratio ${result.ratioToHealthzPolled})`)
  } finally {
    await bed.destroy()
  }
}

await main()
