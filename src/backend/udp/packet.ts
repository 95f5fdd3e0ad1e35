/**
 * Pure IPv4 packet handling for the udp backend's data path (flannel pkg/backend/udp/proxy_amd64.c):
 * header validation, TTL decrement with an incremental checksum patch (RFC 1624), and the ICMP
 * "net unreachable" reply for destinations without a peer.
 *
 * Every function here is self-contained (no imports, no module-level state, constants inlined):
 * the data-path worker is started from source text built out of these very functions
 * (`packetSource()`), so the code that runs in the worker is the code the unit tests exercise.
 */

/** Why a packet was not forwarded; the numeric codes index the drop counters. */
export const DropReason = {
  /** Shorter than an IPv4 header. */
  short: 1,
  /** Version field is not 4 (e.g. IPv6 router solicitations written to the TUN). */
  notIpv4: 2,
  /** IHL below 5 or beyond the packet. */
  badIhl: 3,
  /** Total length disagrees with the bytes read. */
  badLength: 4,
  /** TTL reached 0. */
  ttl: 5,
  /** No peer owns the destination (answered with ICMP net unreachable where allowed). */
  noRoute: 6,
  /** UDP datagram from an address that is not a peer's public IP. */
  unknownSource: 7,
  /** Packet from a peer addressed outside this host's subnet. */
  notLocal: 8,
  /** sendmmsg / write failed. */
  ioError: 9,
} as const

export type DropReasonName = keyof typeof DropReason

/**
 * Checks an IPv4 header in `buf[0, len)`: 0 when sound, else a DropReason code. `exact` requires
 * the total length to equal `len` (UDP payloads and TUN reads are whole packets).
 */
export function checkIpv4(buf: Uint8Array, len: number): number {
  if (len < 20) return 1
  const b0 = buf[0] as number
  if (b0 >> 4 !== 4) return 2
  const ihl = (b0 & 0x0f) * 4
  if (ihl < 20 || ihl > len) return 3
  const total = ((buf[2] as number) << 8) | (buf[3] as number)
  if (total !== len) return 4
  return 0
}

/** Destination address as an unsigned 32-bit number (host order). */
export function ipv4Dst(buf: Uint8Array): number {
  return (((buf[16] as number) << 24) | ((buf[17] as number) << 16) | ((buf[18] as number) << 8) | (buf[19] as number)) >>> 0
}

/** Source address as an unsigned 32-bit number (host order). */
export function ipv4Src(buf: Uint8Array): number {
  return (((buf[12] as number) << 24) | ((buf[13] as number) << 16) | ((buf[14] as number) << 8) | (buf[15] as number)) >>> 0
}

/**
 * Decrements the TTL in place and patches the header checksum incrementally (RFC 1624 eqn. 3:
 * HC' = ~(~HC + ~m + m')). Returns false, leaving the packet untouched, when the TTL would
 * reach 0 (flannel drops those packets; it sends no time-exceeded either).
 */
export function decrementTtl(buf: Uint8Array): boolean {
  const ttl = buf[8] as number
  if (ttl <= 1) return false
  const proto = buf[9] as number
  const oldWord = (ttl << 8) | proto
  const newWord = ((ttl - 1) << 8) | proto
  const hc = ((buf[10] as number) << 8) | (buf[11] as number)
  let sum = (~hc & 0xffff) + (~oldWord & 0xffff) + newWord
  sum = (sum & 0xffff) + (sum >>> 16)
  sum = (sum & 0xffff) + (sum >>> 16)
  const check = ~sum & 0xffff
  buf[8] = ttl - 1
  buf[10] = check >>> 8
  buf[11] = check & 0xff
  return true
}

/** Internet checksum (RFC 1071) of `buf[off, off+len)`. */
export function inetChecksum(buf: Uint8Array, off: number, len: number): number {
  let sum = 0
  let i = off
  const end = off + len
  for (; i + 1 < end; i += 2) sum += ((buf[i] as number) << 8) | (buf[i + 1] as number)
  if (i < end) sum += (buf[i] as number) << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

/**
 * Whether an ICMP error may be sent about this packet: never for non-first fragments, and (RFC
 * 1122 3.2.2) never about an ICMP error message, so two hosts cannot bounce errors forever.
 * flannel also stays silent for ICMP echo; weft answers a ping to an address without a lease,
 * so `ping` shows "Destination Net Unreachable" instead of timing out.
 */
export function mayAnswerWithIcmp(buf: Uint8Array, len: number): boolean {
  const fragOffset = (((buf[6] as number) & 0x1f) << 8) | (buf[7] as number)
  if (fragOffset !== 0) return false
  if (buf[9] !== 1) return true
  const ihl = ((buf[0] as number) & 0x0f) * 4
  if (len <= ihl) return false
  const type = buf[ihl] as number
  // Informational types only: echo reply/request, timestamp (13/14), info (15/16), mask (17/18).
  return type === 0 || type === 8 || (type >= 13 && type <= 18)
}

/**
 * Writes an ICMP destination-unreachable / net-unreachable reply to `offender` into `out`
 * (flannel send_net_unreachable): IPv4 header with TTL 8, id 0, no flags, src = `tunAddr`,
 * dst = the offender's source; ICMP type 3 code 0; the offender's IP header and the first 8
 * bytes of its payload. Returns the length written, 0 when the offender is too short.
 * `out` needs room for 20 + 8 + 60 + 8 bytes.
 */
export function buildNetUnreachable(offender: Uint8Array, len: number, tunAddr: number, out: Uint8Array): number {
  const ihl = ((offender[0] as number) & 0x0f) * 4
  const quoted = ihl + 8
  if (ihl < 20 || len < quoted) return 0
  const total = 28 + quoted
  out.fill(0, 0, 28)
  out[0] = 0x45
  out[2] = total >>> 8
  out[3] = total & 0xff
  out[8] = 8
  out[9] = 1
  out[12] = tunAddr >>> 24
  out[13] = (tunAddr >>> 16) & 0xff
  out[14] = (tunAddr >>> 8) & 0xff
  out[15] = tunAddr & 0xff
  for (let i = 0; i < 4; i++) out[16 + i] = offender[12 + i] as number
  let sum = inetChecksum(out, 0, 20)
  out[10] = sum >>> 8
  out[11] = sum & 0xff
  out[20] = 3
  out[21] = 0
  for (let i = 0; i < quoted; i++) out[28 + i] = offender[i] as number
  sum = inetChecksum(out, 20, 8 + quoted)
  out[22] = sum >>> 8
  out[23] = sum & 0xff
  return total
}

/** Source text of this module's functions, evaluated in the data-path worker. */
export function packetSource(): string {
  return [checkIpv4, ipv4Dst, ipv4Src, decrementTtl, inetChecksum, mayAnswerWithIcmp, buildNetUnreachable].map((f) => f.toString()).join('\n')
}
