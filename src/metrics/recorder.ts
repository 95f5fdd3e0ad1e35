/**
 * What instrumented code reports, as one small interface: the etcd/kube clients, the kernel
 * decorator, the peer reconciler, the udp backend and the lease renewer each take an optional
 * `metrics` of these types. Types only: importing this file loads nothing, and with metrics off
 * the field is absent, so `metrics?.x(...)` costs one property read on the hot path.
 */

export type StoreKind = 'etcd' | 'kube'
export type Outcome = 'ok' | 'error'

/** etcd and kube API clients. `op` is a small fixed set (range, put, txn, list, patch, ...). */
export interface StoreRecorder {
  storeRequest(store: StoreKind, op: string, result: Outcome, seconds: number): void
  /** A lease/node watch reopened; reason: compacted, 410, error, ended. */
  watchRestart(store: StoreKind, reason: string): void
}

/** Kernel operations; `object` is link, addr, route, neigh, fdb, sysctl or tun. */
export interface KernelRecorder {
  kernelOp(object: string, op: string, result: Outcome): void
}

/** udp data-path counters, read at scrape time (the worker keeps them in shared memory). */
export interface UdpCounterView {
  readonly txPackets: number
  readonly rxPackets: number
  readonly drops: Readonly<Record<string, number>>
}

/** The backends' reconciliation work. */
export interface BackendRecorder {
  /** One desired-state apply (a lease batch, a re-assert, a full check), in seconds. */
  reconcile(seconds: number): void
  /** Entries restored after someone changed the kernel (route, neigh, fdb, link). */
  kernelRepairs(object: string, count: number): void
  /** The number of peers programmed now, read at scrape time. */
  observePeers(backend: string, count: () => number): void
  observeUdp(read: () => UdpCounterView | undefined): void
}

export interface LeaseRecorder {
  leaseRenewal(result: Outcome): void
  /** Epoch milliseconds; undefined for a reservation (no TTL). */
  leaseExpiration(epochMs: number | undefined): void
}

export interface Recorder extends StoreRecorder, KernelRecorder, BackendRecorder, LeaseRecorder {}
