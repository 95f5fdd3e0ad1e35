/**
 * Probes by spawning iputils `ping`: ICMP from Node would need a raw socket (a native addon),
 * and ping is on every host flannel runs on. Two echoes 0.2 s apart within 2 s: one answer is
 * enough, so a single lost packet is no finding.
 */
import type { CommandRunner } from '../firewall/command-runner.ts'
import type { ProbeResult } from './facts.ts'

export interface PingOptions {
  /** Payload bytes with don't-fragment set (path MTU test); default a small echo, fragmentation allowed. */
  readonly dfBytes?: number
  /** Overall deadline in seconds (default 2). */
  readonly deadlineSeconds?: number
}

export async function ping(run: CommandRunner, addr: string, opts: PingOptions = {}): Promise<ProbeResult> {
  const df = opts.dfBytes === undefined ? [] : ['-M', 'do', '-s', String(opts.dfBytes)]
  const res = await run('ping', ['-n', '-q', '-c', '2', '-i', '0.2', '-W', '1', '-w', String(opts.deadlineSeconds ?? 2), ...df, addr])
  if (res.code !== 0) return { ok: false }
  const rtt = parsePingSummary(res.stdout)
  return rtt === undefined ? { ok: true } : { ok: true, rttMs: rtt }
}

/** The average of `rtt min/avg/max/mdev = 0.045/0.050/0.055/0.004 ms`, in ms. */
export function parsePingSummary(stdout: string): number | undefined {
  const m = /= [\d.]+\/([\d.]+)\/[\d.]+/.exec(stdout)
  return m ? Number(m[1]) : undefined
}
