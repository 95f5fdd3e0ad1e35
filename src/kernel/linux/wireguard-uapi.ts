/**
 * WireGuard's cross-platform userspace API (the text protocol `wg` and wgctrl speak to a
 * userspace implementation's unix socket, https://www.wireguard.com/xplatform/): keys in hex,
 * one `key=value` per line, a blank line ends a request; every answer ends in `errno=N`.
 */
import { connect } from 'node:net'
import { formatCidr, formatIp, parseCidr, parseIp, type IpNet } from '../../ip/ip.ts'
import type { WireGuardChange, WireGuardPeer, WireGuardState } from '../kernel.ts'
import { hexToKey, keyToHex, publicKeyOf } from '../wireguard-keys.ts'

const ZERO_KEY = '0'.repeat(64)

/** The `set=1` request for a change (wgctrl's semantics: each listed peer's allowed IPs are replaced). */
export function encodeSet(change: WireGuardChange): string {
  const lines = ['set=1']
  if (change.privateKey !== undefined) lines.push(`private_key=${keyToHex(change.privateKey)}`)
  if (change.listenPort !== undefined) lines.push(`listen_port=${change.listenPort}`)
  if (change.replacePeers) lines.push('replace_peers=true')
  for (const key of change.removePeers ?? []) lines.push(`public_key=${keyToHex(key)}`, 'remove=true')
  for (const peer of change.peers ?? []) {
    lines.push(`public_key=${keyToHex(peer.publicKey)}`)
    // Always set, so a PSK or keepalive dropped from the config is dropped from the peer too.
    lines.push(`preshared_key=${peer.presharedKey ? keyToHex(peer.presharedKey) : ZERO_KEY}`)
    if (peer.endpoint) {
      const ip = formatIp(peer.endpoint.ip)
      lines.push(`endpoint=${peer.endpoint.ip.family === 6 ? `[${ip}]` : ip}:${peer.endpoint.port}`)
    }
    lines.push(`persistent_keepalive_interval=${peer.persistentKeepalive ?? 0}`)
    lines.push('replace_allowed_ips=true')
    for (const net of peer.allowedIPs) lines.push(`allowed_ip=${formatCidr(net)}`)
  }
  return `${lines.join('\n')}\n\n`
}

/** Parses a `get=1` answer (without the errno line check; see `errnoOf`). */
export function decodeGet(text: string): WireGuardState {
  let publicKey: string | undefined
  let listenPort = 0
  const peers: Array<{ publicKey: string; presharedKey?: string; endpoint?: WireGuardPeer['endpoint']; allowedIPs: IpNet[]; persistentKeepalive?: number }> = []
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const key = line.slice(0, eq)
    const value = line.slice(eq + 1)
    const peer = peers[peers.length - 1]
    if (key === 'private_key') publicKey = value === ZERO_KEY ? undefined : publicKeyOf(hexToKey(value))
    else if (key === 'listen_port') listenPort = Number(value)
    else if (key === 'public_key') peers.push({ publicKey: hexToKey(value), allowedIPs: [] })
    else if (!peer) continue
    else if (key === 'preshared_key' && value !== ZERO_KEY) peer.presharedKey = hexToKey(value)
    else if (key === 'endpoint') {
      const colon = value.lastIndexOf(':')
      const ip = parseIp(value.slice(0, colon).replace(/^\[|\]$/g, ''))
      if (ip) peer.endpoint = { ip, port: Number(value.slice(colon + 1)) }
    } else if (key === 'persistent_keepalive_interval' && value !== '0') peer.persistentKeepalive = Number(value)
    else if (key === 'allowed_ip') {
      const net = parseCidr(value)
      if (net) peer.allowedIPs.push(net)
    }
  }
  return { ...(publicKey ? { publicKey } : {}), listenPort, peers }
}

/** The errno of an answer; NaN when it has none (a truncated answer). */
export function errnoOf(answer: string): number {
  const m = /(?:^|\n)errno=(-?\d+)\n/.exec(answer)
  return m ? Number(m[1]) : Number.NaN
}

/** Sends one request to the socket at `path` and resolves with the whole answer. */
export function uapiRequest(path: string, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(path)
    let answer = ''
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no answer from ${path} within ${timeoutMs} ms`)) }, timeoutMs)
    sock.setEncoding('utf8')
    sock.on('connect', () => sock.write(request))
    sock.on('data', (d: string) => {
      answer += d
      // An answer ends with errno=N and a blank line.
      if (/(?:^|\n)errno=-?\d+\n\n$/.test(answer)) { clearTimeout(timer); sock.end(); resolve(answer) }
    })
    sock.on('error', (err) => { clearTimeout(timer); reject(err) })
    sock.on('close', () => { clearTimeout(timer); reject(new Error(`${path} closed before answering`)) })
  })
}
