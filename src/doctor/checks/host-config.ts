/** Host settings flannel relies on: forwarding, br_netfilter, and the vxlan checksum-offload bug. */
import type { DoctorFacts } from '../facts.ts'
import type { Finding } from '../finding.ts'

export function checkIpForward(f: DoctorFacts): Finding[] {
  const out: Finding[] = []
  if (f.sysctl.ipForward !== undefined && f.sysctl.ipForward !== '1') {
    out.push({
      code: 'ip-forward-off', severity: 'error',
      problem: `net.ipv4.ip_forward=${f.sysctl.ipForward}: this host does not route between pods and the overlay`,
      fix: 'sysctl -w net.ipv4.ip_forward=1 and persist it in /etc/sysctl.d/',
    })
  }
  if (f.enableIPv6 && f.sysctl.ipv6Forward !== undefined && f.sysctl.ipv6Forward !== '1') {
    out.push({
      code: 'ip-forward-off', severity: 'error',
      problem: `net.ipv6.conf.all.forwarding=${f.sysctl.ipv6Forward} with IPv6 enabled in the network config`,
      fix: 'sysctl -w net.ipv6.conf.all.forwarding=1 and persist it in /etc/sysctl.d/',
    })
  }
  return out
}

export function checkBrNetfilter(f: DoctorFacts): Finding[] {
  // Native nftables mode does not need bridged traffic to pass iptables (flannel skips the check too).
  if (f.enableNFTables) return []
  const { brNfCallIptables: v4, brNfCallIp6tables: v6 } = f.sysctl
  if (v4 === undefined) {
    return [{
      code: 'br-netfilter-missing', severity: 'warning',
      problem: 'the br_netfilter module is not loaded (/proc/sys/net/bridge/bridge-nf-call-iptables is absent): traffic between pods on one bridge bypasses iptables, so Services between them fail',
      fix: 'modprobe br_netfilter and persist it: echo br_netfilter > /etc/modules-load.d/br_netfilter.conf',
    }]
  }
  if (f.bridges.length === 0) return []
  const off = [...(v4 !== '1' ? ['net.bridge.bridge-nf-call-iptables'] : []), ...(f.enableIPv6 && v6 !== undefined && v6 !== '1' ? ['net.bridge.bridge-nf-call-ip6tables'] : [])]
  if (off.length === 0) return []
  return [{
    code: 'br-netfilter-missing', severity: 'error',
    problem: `${off.map((s) => `${s}=0`).join(', ')} while pods sit on bridge ${f.bridges.join(', ')}: their bridged traffic skips iptables (kube-proxy, masquerade)`,
    fix: `sysctl -w ${off.map((s) => `${s}=1`).join(' ')} and persist it in /etc/sysctl.d/`,
  }]
}

/** `5.6.19-300.fc32` → [5, 6]; undefined when unreadable. */
export function kernelVersion(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release)
  return m ? [Number(m[1]), Number(m[2])] : undefined
}

/**
 * Kernels before 5.7 miscompute the UDP checksum of vxlan packets that netfilter NATs (fixed by
 * "netfilter: nat: never update the UDP checksum when it's 0"); with tx checksum offload on the
 * device, SYNs to Services are dropped and retried: the 63 s delays (flannel#1282, #1859).
 */
export function checkChecksumOffload(f: DoctorFacts): Finding[] {
  if (f.backendType !== 'vxlan' || f.device?.txChecksumIpGeneric !== true) return []
  const v = kernelVersion(f.kernelRelease)
  if (!v || v[0] > 5 || (v[0] === 5 && v[1] >= 7)) return []
  return [{
    code: 'checksum-offload-bug', severity: 'error',
    problem: `kernel ${f.kernelRelease} (< 5.7) with tx-checksum-ip-generic on for ${f.device.name}: NATed vxlan packets leave with bad UDP checksums (63 s delays to Services)`,
    fix: `ethtool -K ${f.device.name} tx-checksum-ip-generic off (persist with a udev rule), or upgrade the kernel to 5.7 or later`,
  }]
}
