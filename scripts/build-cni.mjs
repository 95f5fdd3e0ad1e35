// npm run build:cni -- DIR: writes the host CNI plugin into DIR as `flannel`, the `type` that
// kube-flannel's cni-conf.json names. The container runtime execs it on the host, where neither
// `node` nor weft's dist/ may exist, so it is a Node single executable application: this Node
// binary with the plugin's one-file bundle injected (deploy/README.md has the measured size and
// latency). It needs only the host's glibc and libstdc++.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { build } from 'esbuild'
import { inject } from 'postject'

const PLUGIN_NAME = 'flannel'
// The fuse Node's SEA loader checks; postject flips it when it injects the blob.
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

const target = process.argv[2]
if (!target) {
  process.stderr.write('usage: npm run build:cni -- DIR   (writes DIR/flannel)\n')
  process.exit(2)
}
const dir = resolve(target)
const repo = resolve(import.meta.dirname, '..')
const work = mkdtempSync(join(tmpdir(), 'weft-build-cni-'))
try {
  const script = join(work, 'cni.cjs')
  // A SEA runs one CommonJS script that may require only Node's built-in modules.
  await build({
    entryPoints: [join(repo, 'src/cni/cni-main.ts')],
    outfile: script,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    charset: 'ascii',
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  })
  const blob = join(work, 'sea.blob')
  const config = join(work, 'sea-config.json')
  writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }))
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] })

  const exe = join(work, PLUGIN_NAME)
  copyFileSync(process.execPath, exe)
  chmodSync(exe, 0o755)
  // Node's symbols and debug info are 13 of its 99 MB; the plugin never needs them.
  const strip = spawnSync('strip', [exe], { stdio: ['ignore', 'ignore', 'inherit'] })
  if (strip.error || strip.status !== 0) process.stderr.write(`build:cni: strip ${strip.error ? 'not found' : 'failed'}; the plugin keeps node's symbols\n`)
  await inject(exe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE })

  // A binary that does not start is caught here, not on a node at the first pod.
  const version = spawnSync(exe, [], { env: { CNI_COMMAND: 'VERSION' }, input: '', encoding: 'utf8' })
  if (version.status !== 0 || !version.stdout.includes('"supportedVersions"')) {
    throw new Error(`built plugin does not answer CNI VERSION (exit ${version.status}): ${version.stdout}${version.stderr}`)
  }
  // Into place by rename: a runtime exec'ing DIR/flannel meanwhile never sees half a file.
  mkdirSync(dir, { recursive: true })
  const tmp = join(dir, `.${PLUGIN_NAME}.${process.pid}.tmp`)
  copyFileSync(exe, tmp)
  renameSync(tmp, join(dir, PLUGIN_NAME))
  process.stderr.write(`build:cni: wrote ${join(dir, PLUGIN_NAME)} (${(statSync(join(dir, PLUGIN_NAME)).size / 2 ** 20).toFixed(1)} MiB, node ${process.version})\n`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
