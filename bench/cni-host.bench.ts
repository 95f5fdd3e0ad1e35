/**
 * The host CNI plugin (issue 14): size of the single executable `npm run build:cni` writes, and
 * its ADD and DEL latency against two baselines measured in the same run, round-robin:
 * - the same plugin code run by node (`node dist/weft.cjs`, the weft CLI in CNI mode);
 * - Debian's `bridge` plugin alone with the delegate config weft would hand it (the floor: the
 *   work every flannel-style plugin delegates).
 * Each call runs as a runtime makes it: in a throwaway host namespace, a fresh pod namespace,
 * an environment of CNI_* and PATH only. Prints medians, writes bench/results/cni-host.json.
 * Needs root. WEFT_BENCH_CNI_PLUGIN: an already built plugin to measure instead of building one.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createScratchNetns, type ScratchNetns } from '../test/helpers/scratch-netns.ts'
import { buildDelegateConf } from '../src/cni/delegate-conf.ts'
import { parseNetConf } from '../src/cni/net-conf.ts'
import { parseSubnetEnv } from '../src/cni/subnet-env.ts'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const DEBIAN_CNI = '/usr/lib/cni'
const RUNS = 11

if (process.getuid?.() !== 0) {
  console.log('cni-host: skipped (needs root: network namespaces)')
  process.exit(0)
}

const work = mkdtempSync(join(tmpdir(), 'weft-bench-cni-'))
const spaces: ScratchNetns[] = []
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const ms = (x: number): number => Math.round(x * 10) / 10

/** Runs one plugin call in the host namespace and returns its wall time in ms. */
function call(host: ScratchNetns, argv: string[], env: Record<string, string>, stdin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now()
    const child = spawn('ip', ['netns', 'exec', host.name, ...argv], { env: { PATH: process.env.PATH ?? '', CNI_PATH: DEBIAN_CNI, CNI_IFNAME: 'eth0', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d })
    child.stderr.on('data', (d: Buffer) => { out += d })
    child.once('error', reject)
    child.once('close', (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`${argv.join(' ')} ${env.CNI_COMMAND} exit ${code}: ${out}`))))
    child.stdin.end(stdin)
  })
}

try {
  let plugin = process.env.WEFT_BENCH_CNI_PLUGIN ?? ''
  if (plugin === '') {
    const built = spawnSync('npm', ['--prefix', REPO, 'run', '-s', 'build:cni', '--', join(work, 'bin')], { encoding: 'utf8' })
    if (built.status !== 0) throw new Error(`build:cni failed: ${built.stderr}`)
    plugin = join(work, 'bin', 'flannel')
  }
  const subnetFile = join(work, 'subnet.env')
  const subnetText = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n'
  writeFileSync(subnetFile, subnetText)
  const conf = {
    cniVersion: '0.3.1', name: 'cbr0', type: 'flannel', subnetFile, dataDir: join(work, 'state'),
    ipam: { dataDir: join(work, 'ipam') }, delegate: { hairpinMode: true, isDefaultGateway: true },
  }
  const delegate = JSON.stringify(buildDelegateConf(parseNetConf(JSON.stringify(conf)), parseSubnetEnv(subnetText)))
  const variants = [
    { name: 'sea', argv: [plugin], stdin: JSON.stringify(conf) },
    { name: 'nodeDist', argv: [process.execPath, join(REPO, 'dist', 'weft.cjs')], stdin: JSON.stringify(conf) },
    { name: 'bridgeAlone', argv: [join(DEBIAN_CNI, 'bridge')], stdin: delegate },
  ]
  const host = createScratchNetns('h')
  spaces.push(host)
  const times: Record<string, { add: number[]; del: number[] }> = {}
  let n = 0
  // Run 0 warms up (it creates the bridge) and is not counted.
  for (let run = 0; run <= RUNS; run++) {
    for (const v of variants) {
      const pod = createScratchNetns('p')
      const env = { CNI_CONTAINERID: `bench-${n++}`, CNI_NETNS: `/var/run/netns/${pod.name}` }
      const add = await call(host, v.argv, { ...env, CNI_COMMAND: 'ADD' }, v.stdin)
      const del = await call(host, v.argv, { ...env, CNI_COMMAND: 'DEL' }, v.stdin)
      pod.destroy()
      if (run === 0) continue
      const t = (times[v.name] ??= { add: [], del: [] })
      t.add.push(ms(add))
      t.del.push(ms(del))
    }
  }
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    pluginBytes: statSync(plugin).size,
    runs: RUNS,
    addMedianMs: Object.fromEntries(Object.entries(times).map(([k, t]) => [k, median(t.add)])),
    delMedianMs: Object.fromEntries(Object.entries(times).map(([k, t]) => [k, median(t.del)])),
    samples: times,
  }
  console.log(`host plugin ${(result.pluginBytes / 2 ** 20).toFixed(1)} MiB (${result.pluginBytes} bytes), ${RUNS} runs each`)
  for (const v of variants) console.log(`  ${v.name.padEnd(12)} ADD median ${result.addMedianMs[v.name]} ms   DEL median ${result.delMedianMs[v.name]} ms`)
  writeFileSync(join(REPO, 'bench', 'results', 'cni-host.json'), JSON.stringify(result, null, 2) + '\n')
} finally {
  for (const ns of spaces) ns.destroy()
  rmSync(work, { recursive: true, force: true })
}
