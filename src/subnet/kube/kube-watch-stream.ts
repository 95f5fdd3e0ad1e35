/**
 * The body of a watch: one JSON object per event, each followed by "\n", in chunks that may
 * split an event or carry several. Split on the newline byte, not on decoded text, so a chunk
 * boundary inside a multi-byte character costs nothing; only the unfinished event is buffered.
 */
import { DecodeError, asStatus, decodeNode } from './kube-decode.ts'
import type { KubeStatus, NodeWatchEvent } from './kube-types.ts'

/** An API object is at most ~1.5 MB (etcd's request limit); a longer line is no watch stream. */
const MAX_EVENT_BYTES = 16 * 1024 * 1024
const NEWLINE = 0x0a

/** Each complete newline-terminated line of `chunks`, as text; trailing partial data is an error. */
export async function* jsonLines(chunks: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let pending: Buffer[] = []
  let pendingBytes = 0
  for await (const chunk of chunks) {
    let start = 0
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, nl)
      const line = pending.length === 0 ? piece.toString('utf8') : Buffer.concat([...pending, piece]).toString('utf8')
      pending = []
      pendingBytes = 0
      start = nl + 1
      if (line.trim() !== '') yield line
    }
    if (start < chunk.length) {
      pendingBytes += chunk.length - start
      if (pendingBytes > MAX_EVENT_BYTES) throw new DecodeError('', `a watch event longer than ${MAX_EVENT_BYTES} bytes without a newline`)
      // Copy: a subarray would keep the whole (up to 64 KB) chunk alive.
      pending.push(Buffer.from(chunk.subarray(start)))
    }
  }
  if (pending.length > 0 && Buffer.concat(pending).toString('utf8').trim() !== '') {
    throw new DecodeError('', 'the watch stream ended in the middle of an event')
  }
}

/** A watch ERROR event: the Status the server sent instead of an object. */
export class WatchErrorEvent extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message ?? status.reason ?? 'watch error')
    this.name = 'WatchErrorEvent'
  }
}

/** Decodes one line of a node watch; ERROR events throw WatchErrorEvent. */
export function decodeNodeWatchEvent(line: string): NodeWatchEvent {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    throw new DecodeError('', `a watch event is not JSON: ${line.length > 120 ? `${line.slice(0, 120)}...` : line}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DecodeError('', 'a watch event is not an object')
  const { type, object } = value as { type?: unknown; object?: unknown }
  switch (type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED':
      return { type, object: decodeNode(object, 'object') }
    case 'BOOKMARK': {
      const meta = typeof object === 'object' && object !== null ? (object as { metadata?: { resourceVersion?: unknown } }).metadata : undefined
      const resourceVersion = meta?.resourceVersion
      if (typeof resourceVersion !== 'string' || resourceVersion === '') throw new DecodeError('object.metadata.resourceVersion', 'a BOOKMARK without a resourceVersion')
      return { type, resourceVersion }
    }
    case 'ERROR':
      throw new WatchErrorEvent(asStatus(object) ?? { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'ERROR event without a Status' })
    default:
      throw new DecodeError('type', `unknown watch event type ${JSON.stringify(type)}`)
  }
}
