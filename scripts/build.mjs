// Bundles the two executables into dist/ so weftd starts fast (one file, lazy backend chunks).
import { rmSync } from 'node:fs'
import { build } from 'esbuild'

// Chunk names carry content hashes: start from an empty dist/ so stale chunks don't pile up.
rmSync('dist', { recursive: true, force: true })

await build({
  entryPoints: { weftd: 'src/cli/weftd.ts', weft: 'src/cli/weft.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Native and cloud SDK packages stay outside the bundle and load only when a backend needs them.
  packages: 'external',
  banner: { js: "import { createRequire as __weftCreateRequire } from 'node:module'; const require = __weftCreateRequire(import.meta.url);" },
  logLevel: 'warning',
})
