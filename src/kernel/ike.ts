/**
 * The IKE daemon seam for the ipsec backend: charon (kernel/linux/charon.ts, over VICI) in
 * production, MemoryIke in tests. One connection per remote lease: IKEv2 with a PSK between the
 * public IPs, one tunnel-mode child SA between the two subnets; the daemon installs the xfrm
 * state and policies (out, in, fwd) as the child comes up.
 */
import type { IpAddr, IpNet } from '../ip/ip.ts'

export interface IkeConnection {
  readonly name: string
  readonly localAddr: IpAddr
  readonly remoteAddr: IpAddr
  readonly localTs: IpNet
  readonly remoteTs: IpNet
  readonly espProposal: string
  readonly udpEncap: boolean
  readonly psk: string
}

export interface IkeDaemon {
  /** 'charon (strongSwan x.y)', for logs. */
  readonly description: string
  /** Loads (or replaces) the PSK for the peer and the connection, and starts it. */
  loadConnection(conn: IkeConnection): Promise<void>
  /** Unloads the connection (its SAs and policies go with it); an unknown name is not an error. */
  unloadConnection(name: string): Promise<void>
  /** Names of the loaded connections. */
  connections(): Promise<string[]>
  stop(): Promise<void>
}

/** In-memory IkeDaemon for tests: records what is loaded. */
export class MemoryIke implements IkeDaemon {
  readonly description = 'memory'
  readonly loaded = new Map<string, IkeConnection>()
  stopped = false
  /** load/unload calls so far. */
  calls = 0
  async loadConnection(conn: IkeConnection): Promise<void> {
    this.calls++
    this.loaded.set(conn.name, conn)
  }
  async unloadConnection(name: string): Promise<void> {
    this.calls++
    this.loaded.delete(name)
  }
  async connections(): Promise<string[]> {
    return [...this.loaded.keys()].sort()
  }
  async stop(): Promise<void> {
    this.stopped = true
  }
}
