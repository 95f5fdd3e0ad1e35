/** The store's view: shared public IPs (#98), leases about to expire, nodes without a podCIDR (#1344). */
import type { DoctorFacts } from '../facts.ts'
import type { Finding } from '../finding.ts'

export function checkDuplicatePublicIp(f: DoctorFacts): Finding[] {
  const byIp = new Map<string, string[]>()
  for (const l of f.leases) {
    if (!l.publicIp) continue
    byIp.set(l.publicIp, [...(byIp.get(l.publicIp) ?? []), l.subnet ?? l.name])
  }
  return [...byIp].filter(([, subnets]) => subnets.length > 1).map(([ip, subnets]) => ({
    code: 'duplicate-public-ip' as const, severity: 'error' as const,
    problem: `${subnets.length} leases carry PublicIP ${ip} (${subnets.join(', ')}): peers send both subnets to one host`,
    fix: 'on each host with that address pick the right interface (--iface / --iface-regex / --public-ip; a Vagrant NAT 10.0.2.15 is the usual cause), then delete the wrong lease and restart weftd there',
  }))
}

export function checkLeaseExpiry(f: DoctorFacts): Finding[] {
  const margin = f.renewMarginMinutes * 60
  return f.leases.filter((l) => l.expiresInSeconds !== undefined && l.expiresInSeconds < margin).map((l) => ({
    code: 'lease-expiring' as const, severity: 'warning' as const,
    problem: `lease ${l.subnet ?? l.name} of ${l.publicIp ?? '?'} expires in ${l.expiresInSeconds} s, past its renewal ${f.renewMarginMinutes} min before expiry: the weftd holding it is not renewing`,
    fix: `check weftd on ${l.publicIp ?? 'that host'} (running? reaching etcd?); once it expires another host may take the subnet`,
  }))
}

export function checkPodCidr(f: DoctorFacts): Finding[] {
  if (f.mode !== 'kube' || !f.node || f.node.podCidr) return []
  return [{
    code: 'podcidr-unassigned', severity: 'error',
    problem: `node ${f.node.name} has no spec.podCIDR: weftd waits (flanneld crash-loops with "pod cidr not assigned")`,
    fix: 'run kube-controller-manager with --allocate-node-cidrs=true and --cluster-cidr matching the Network of net-conf.json (kubeadm: --pod-network-cidr), or set the node\'s spec.podCIDR',
  }]
}
