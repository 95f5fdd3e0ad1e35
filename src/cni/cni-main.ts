/**
 * Stand-alone entry of the CNI plugin (`node cni-main.ts` with CNI_* env and the config on
 * stdin). The `weft` CLI does the same when CNI_COMMAND is set. It is also the entry of the host
 * plugin (scripts/build-cni.mjs): a single executable application runs a CommonJS script, where
 * top-level await does not exist, hence the async main.
 */
import { runCniPlugin } from './cni-plugin.ts'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

async function main(): Promise<void> {
  const stdin = process.env.CNI_COMMAND === 'VERSION' && process.stdin.isTTY ? '' : await readStdin()
  const out = await runCniPlugin(process.env, stdin)
  process.stdout.write(out.stdout)
  process.exitCode = out.exitCode
}

void main()
