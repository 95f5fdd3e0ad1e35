/**
 * Stand-alone entry of the CNI plugin (`node cni-main.ts` with CNI_* env and the config on
 * stdin). The `weft` CLI does the same when CNI_COMMAND is set.
 */
import { runCniPlugin } from './cni-plugin.ts'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

const out = await runCniPlugin(process.env, process.env.CNI_COMMAND === 'VERSION' && process.stdin.isTTY ? '' : await readStdin())
process.stdout.write(out.stdout)
process.exitCode = out.exitCode
