/** WireGuard device state for MemoryKernel: private key, port and peers by public key. */
import type { WireGuardChange, WireGuardPeer, WireGuardState } from '../kernel.ts'
import { publicKeyOf } from '../wireguard-keys.ts'

export class MemoryWireGuard {
  private privateKey: string | undefined
  private listenPort = 0
  private readonly peers = new Map<string, WireGuardPeer>()

  apply(change: WireGuardChange): void {
    if (change.privateKey !== undefined) this.privateKey = change.privateKey
    if (change.listenPort !== undefined) this.listenPort = change.listenPort
    if (change.replacePeers) this.peers.clear()
    for (const key of change.removePeers ?? []) this.peers.delete(key)
    for (const peer of change.peers ?? []) this.peers.set(peer.publicKey, peer)
  }

  state(): WireGuardState {
    return {
      ...(this.privateKey ? { publicKey: publicKeyOf(this.privateKey) } : {}),
      listenPort: this.listenPort,
      peers: [...this.peers.values()].sort((a, b) => (a.publicKey < b.publicKey ? -1 : 1)),
    }
  }
}
