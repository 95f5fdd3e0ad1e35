/** What this host knows of each peer: probes, kernel entries, the interface that reaches it. */
import type { DoctorFacts, PeerFacts } from '../facts.ts'
import type { Finding } from '../finding.ts'

const udpPort = (f: DoctorFacts): string => (f.backendType === 'udp' ? 'UDP 8285' : 'UDP 8472')

export function checkOverlay(f: DoctorFacts): Finding[] {
  const out: Finding[] = []
  for (const p of f.peers) {
    if (!p.underlay || !p.overlay) continue
    if (p.underlay.ok && !p.overlay.ok) {
      out.push({
        code: 'overlay-unreachable', severity: 'error',
        problem: `peer ${p.name}: ${p.publicIp} answers on the underlay but its overlay address ${overlayAddr(p)} does not: ${f.backendType} packets (${udpPort(f)}) are dropped on the way`,
        fix: `allow ${udpPort(f)} between the hosts (host firewall, security group, NSX) in both directions; run weft doctor on ${p.name} too`,
      })
    } else if (!p.underlay.ok && p.overlay.ok) {
      out.push({
        code: 'overlay-unreachable', severity: 'warning',
        problem: `peer ${p.name}: its overlay address answers but its public IP ${p.publicIp} does not answer ping on the underlay (ICMP filtered?)`,
        fix: `allow ICMP echo to ${p.publicIp}, or ignore if filtered on purpose`,
      })
    } else if (!p.underlay.ok && !p.overlay.ok) {
      out.push({
        code: 'overlay-unreachable', severity: 'error',
        problem: `peer ${p.name}: neither its public IP ${p.publicIp} nor its overlay address answers: the host is down, or its lease is stale`,
        fix: `check the host at ${p.publicIp}; if it is gone, delete its lease (weft leases) so peers stop routing to it`,
      })
    }
  }
  return out
}

function overlayAddr(p: PeerFacts): string {
  return p.subnet?.replace(/\/\d+$/, '') ?? '?'
}

export function checkPeerKernelState(f: DoctorFacts): Finding[] {
  const dev = f.device
  const out: Finding[] = []
  for (const p of f.peers) {
    if (!p.subnet || p.route === undefined) continue
    const missing: string[] = []
    if (f.backendType === 'vxlan' && dev) {
      const direct = p.route?.gateway === p.publicIp && p.route?.dev !== dev.name
      if (!p.route) missing.push(`route ${p.subnet} dev ${dev.name}`)
      if (!direct && p.vtepMac) {
        if (p.neighMac === null || p.neighMac === undefined) missing.push(`neighbour ${overlayAddr(p)} lladdr ${p.vtepMac}`)
        else if (p.neighMac !== p.vtepMac.toLowerCase()) missing.push(`neighbour ${overlayAddr(p)} has lladdr ${p.neighMac}, the lease says ${p.vtepMac}`)
        if (p.publicIp && !(p.fdbDsts ?? []).includes(p.publicIp)) missing.push(`fdb ${p.vtepMac} dst ${p.publicIp}`)
      }
    } else if (f.backendType === 'host-gw') {
      if (!p.route) missing.push(`route ${p.subnet} via ${p.publicIp}`)
      else if (p.route.gateway !== p.publicIp) missing.push(`route ${p.subnet} goes via ${p.route.gateway ?? p.route.dev}, not ${p.publicIp}`)
    }
    if (missing.length === 0) continue
    out.push({
      code: 'kernel-state-missing', severity: 'error',
      problem: `peer ${p.name}: ${missing.join('; ')} absent or wrong in the kernel`,
      fix: 'restart weftd on this host (it replays every peer); if it runs and this persists, its log says why it cannot program the entry',
    })
  }
  return out
}

export function checkInterface(f: DoctorFacts): Finding[] {
  const elsewhere = f.peers.filter((p) => p.underlayDev !== undefined && p.underlayDev !== f.iface.name)
  if (elsewhere.length === 0) return []
  const list = elsewhere.slice(0, 5).map((p) => `${p.publicIp} via ${p.underlayDev}`).join(', ')
  return [{
    code: 'wrong-interface', severity: 'error',
    problem: `the chosen interface ${f.iface.name}${f.iface.addr ? ` (${f.iface.addr})` : ''} has no route to ${elsewhere.length} peer(s): ${list}`,
    fix: `choose the interface that reaches the peers with --iface=<name> or --iface-can-reach=<peer IP>, restart weftd`,
  }]
}
