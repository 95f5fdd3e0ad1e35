/**
 * `weft dashboard [--listen ADDR] --hosts HOST:PORT,...`: serves the live cluster page, built
 * from each listed weftd's probe row on its health port (--healthz-port). Loopback by default:
 * the page shows the cluster's addresses, so exposing it is the operator's explicit choice.
 */
import { ConfigError, errorMessage } from '../../errors.ts'
import { parseIp } from '../../ip/ip.ts'

export const DASHBOARD_USAGE = `Usage: weft dashboard --hosts HOST:PORT[,HOST:PORT...] [--listen ADDR:PORT]

Serves a live page of the cluster (hosts and subnets, each host's state, the reachability
matrix of every host's overlay probes). HOST:PORT is a weftd health endpoint (--healthz-port);
--listen defaults to 127.0.0.1:8470.
`

export interface DashboardArgs { readonly host: string; readonly port: number; readonly endpoints: string[] }

export function parseDashboardArgs(argv: readonly string[]): DashboardArgs | { help: true } {
  let listen = '127.0.0.1:8470'
  let hosts: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '-h' || arg === '--help') return { help: true }
    const [name, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined]
    const value = (): string => {
      const v = inline ?? argv[++i]
      if (v === undefined) throw new ConfigError(name, 'flag needs an argument', { code: 'USAGE' })
      return v
    }
    if (name === '--listen') listen = value()
    else if (name === '--hosts') hosts = value()
    else throw new ConfigError(name, 'unknown flag; weft dashboard takes --listen and --hosts', { code: 'USAGE' })
  }
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen)
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (!host || !parseIp(host) || !(port >= 0 && port <= 65535)) throw new ConfigError('--listen', `must be IP:PORT (e.g. 127.0.0.1:8470), got ${JSON.stringify(listen)}`, { code: 'USAGE' })
  if (!hosts) throw new ConfigError('--hosts', 'is required: the weftd health endpoints, e.g. 10.0.0.1:8471,10.0.0.2:8471', { code: 'USAGE' })
  const endpoints = hosts.split(',').map((h) => h.trim()).filter((h) => h !== '').map((h) => {
    const url = /^https?:\/\//.test(h) ? h : `http://${h}`
    try { new URL(url) } catch { throw new ConfigError('--hosts', `${JSON.stringify(h)} is not HOST:PORT or a URL`, { code: 'USAGE' }) }
    return url
  })
  return { host, port, endpoints }
}

export async function runDashboard(argv: readonly string[], signal: AbortSignal): Promise<number> {
  let args: DashboardArgs | { help: true }
  try {
    args = parseDashboardArgs(argv)
  } catch (err) {
    process.stderr.write(`weft dashboard: ${errorMessage(err)}\n`)
    return 2
  }
  if ('help' in args) { process.stdout.write(DASHBOARD_USAGE); return 0 }
  const { startDashboard } = await import('../../dashboard/dashboard-server.ts')
  try {
    const dash = await startDashboard({ host: args.host, port: args.port, endpoints: args.endpoints }, signal)
    process.stdout.write(`weft dashboard: serving ${dash.url} (${args.endpoints.length} hosts)\n`)
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
    await dash.close()
    return 0
  } catch (err) {
    process.stderr.write(`weft dashboard: ${errorMessage(err)}\n`)
    return 2
  }
}
