/**
 * This host's own state against the store: subnet.env, the overlay device's MTU and MAC.
 * flannel's reports: "open /run/flannel/subnet.env: no such file" (#2253), wrong MTU (#1011),
 * VtepMAC drift after a reboot (#1795).
 */
import type { DoctorFacts } from '../facts.ts'
import type { Finding } from '../finding.ts'
import { formatIp, ipAdd, parseCidr } from '../../ip/ip.ts'

/** FLANNEL_SUBNET as weftd writes it: the first usable address with the prefix. */
export function subnetEnvSubnet(subnet: string): string | undefined {
  const net = parseCidr(subnet)
  return net && `${formatIp(ipAdd({ family: net.family, value: net.addr }, 1n))}/${net.prefix}`
}

export function checkSubnetEnv(f: DoctorFacts): Finding[] {
  const { path, values } = f.subnetEnv
  if (!values) {
    return [{
      code: 'subnet-env-missing', severity: 'error',
      problem: `${path} does not exist: the CNI flannel plugin fails every pod with "open ${path}: no such file or directory"`,
      fix: `start weftd (it writes ${path} once it holds a lease), or pass it the same --subnet-file as the CNI config's subnetFile`,
    }]
  }
  const out: Finding[] = []
  const wrong: string[] = []
  const want = f.own?.subnet && subnetEnvSubnet(f.own.subnet)
  if (want && values.FLANNEL_SUBNET !== want) wrong.push(`FLANNEL_SUBNET=${values.FLANNEL_SUBNET ?? '(unset)'} but the lease is ${f.own?.subnet} (want ${want})`)
  if (f.network && values.FLANNEL_NETWORK !== f.network) wrong.push(`FLANNEL_NETWORK=${values.FLANNEL_NETWORK ?? '(unset)'} but the network is ${f.network}`)
  if (!f.own && f.mode === 'etcd') wrong.push(`no lease in the store carries this host's public IP ${f.iface.addr ?? '?'}`)
  if (wrong.length > 0) {
    out.push({
      code: 'subnet-env-stale', severity: 'error',
      problem: `${path} does not match the store: ${wrong.join('; ')}`,
      fix: 'restart weftd on this host so it rewrites the file from its lease, then recreate the pods started with the old values',
    })
  }
  return out
}

export function checkMtu(f: DoctorFacts): Finding[] {
  const out: Finding[] = []
  const dev = f.device
  const envMtu = f.subnetEnv.values?.FLANNEL_MTU
  if (dev && f.expectedDeviceMtu !== undefined && dev.mtu !== f.expectedDeviceMtu) {
    const source = f.backendMtu ? `Backend.MTU ${f.backendMtu}` : `${f.iface.name} MTU ${f.iface.mtu}`
    out.push({
      code: 'mtu-mismatch', severity: 'error',
      problem: `${dev.name} has MTU ${dev.mtu}, but ${source} minus the encapsulation gives ${f.expectedDeviceMtu}`,
      fix: `restart weftd (it sets ${dev.name} to ${f.expectedDeviceMtu}), or set Backend.MTU in the network config if the underlay MTU is really different`,
    })
  }
  if (dev && envMtu !== undefined && Number(envMtu) !== dev.mtu) {
    out.push({
      code: 'mtu-mismatch', severity: 'error',
      problem: `subnet.env FLANNEL_MTU=${envMtu} but ${dev.name} has MTU ${dev.mtu}: pods send frames the overlay cannot carry (or waste room)`,
      fix: 'restart weftd so device and subnet.env agree, then recreate the pods (their veth MTU comes from FLANNEL_MTU)',
    })
  }
  for (const p of f.peers) {
    if (p.overlay?.ok && p.overlayFull && !p.overlayFull.ok) {
      out.push({
        code: 'mtu-mismatch', severity: 'error',
        problem: `peer ${p.name}: a ${p.overlayFull.bytes}-byte don't-fragment ping through the overlay fails while a small one answers: the path MTU to it is smaller than this host's device MTU`,
        fix: 'give every host the same underlay MTU, or set Backend.MTU to the smallest underlay MTU on the path and restart weftd everywhere',
      })
    }
  }
  return out
}

export function checkVtepMac(f: DoctorFacts): Finding[] {
  const dev = f.device
  const leaseMac = f.own?.vtepMac
  if (!dev?.mac || !leaseMac || dev.mac === leaseMac.toLowerCase()) return []
  return [{
    code: 'vtep-mac-drift', severity: 'error',
    problem: `${dev.name} has MAC ${dev.mac} but this host's ${f.mode === 'kube' ? 'backend-data annotation' : 'lease'} publishes VtepMAC ${leaseMac}: peers send to the old MAC and drop the traffic`,
    fix: `restart weftd (it republishes or restores the MAC); stop udev/systemd from rewriting it with a .link file "MACAddressPolicy=none" matching ${dev.name}`,
  }]
}

export function checkOwnDevice(f: DoctorFacts): Finding[] {
  if (f.device !== null) return []
  return [{
    code: 'kernel-state-missing', severity: 'error',
    problem: `the ${f.backendType} device of this host is absent: nothing carries pod traffic to the peers`,
    fix: 'start (or restart) weftd; it creates the device and programs every peer',
  }]
}
