/**
 * `weft doctor [--json] [weftd flags]`: checks this host and probes its peers, reading the store
 * with the same flags and FLANNELD_* variables as weftd. Exit 0: no problem; 1: findings; 2: cannot run.
 */
import { parseDaemonArgs } from '../../daemon/options.ts'
import { StreamLogger } from '../../log/stream-logger.ts'
import { errorMessage } from '../../errors.ts'
import { execRunner } from '../../firewall/command-runner.ts'
import { LinuxKernel } from '../../kernel/linux/linux-kernel.ts'
import { gatherFacts } from '../../doctor/gather.ts'
import { runChecks } from '../../doctor/checks/index.ts'
import { exitCodeFor } from '../../doctor/finding.ts'
import { buildReport, formatReport } from '../../doctor/report.ts'

export const DOCTOR_USAGE = `Usage: weft doctor [--json] [--no-probe] [weftd flags]

Checks this host (subnet.env, the overlay device, sysctls, iptables) and probes every peer on
the underlay and through the overlay. Takes weftd's flags and FLANNELD_* variables, so it reads
the same store (--etcd-*, or --kube-subnet-mgr with NODE_NAME). Exit 0: no problem found;
1: problems found; 2: cannot run. Codes: docs/troubleshooting.md.
`

export async function runDoctor(argv: readonly string[], env: NodeJS.ProcessEnv, signal: AbortSignal, out: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  const json = argv.includes('--json')
  const noProbes = argv.includes('--no-probe')
  const rest = argv.filter((a) => a !== '--json' && a !== '--no-probe')
  let kernel: LinuxKernel | undefined
  try {
    const parsed = parseDaemonArgs(rest, env, { stderrIsTTY: process.stderr.isTTY === true, program: 'weft doctor' })
    if ('help' in parsed) { out(DOCTOR_USAGE); return 0 }
    if ('version' in parsed) { out(`use weft version\n`); return 2 }
    // Quiet unless -v 4: the report is the output.
    const logger = new StreamLogger({ level: parsed.logLevel === 'debug' ? 'debug' : 'error', format: parsed.logFormat, write: (l) => process.stderr.write(l) })
    kernel = new LinuxKernel({ logger })
    const facts = await gatherFacts({ options: parsed, env, kernel, run: execRunner, logger, now: Date.now, noProbes }, signal)
    const findings = runChecks(facts)
    const report = buildReport(facts, findings)
    out(json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report))
    return exitCodeFor(findings)
  } catch (err) {
    process.stderr.write(`weft doctor: cannot run: ${errorMessage(err)}\n`)
    if (json) out(JSON.stringify({ ok: false, error: errorMessage(err) }) + '\n')
    return 2
  } finally {
    kernel?.close()
  }
}
