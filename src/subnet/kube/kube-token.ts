/**
 * The bearer token of each request. Bound service-account tokens expire (1 h by default) and
 * the kubelet rewrites the projected file well before that, so a token file is watched: a cheap
 * stat (inode, size, mtime) before a request, at most once per `recheckMs`, and a read when it
 * changed. client-go instead caches the file's contents for a minute, so it may send an expired
 * token for up to a minute after a rotation; this source sees the new one within a second.
 * A 401 forces a re-read (HttpKubeApi retries the request once with the new token).
 */
import { readFileSync, statSync } from 'node:fs'
import type { KubeAuth } from './kube-client-config.ts'

export interface TokenSource {
  /** The Authorization header value, or undefined. */
  header(now: number): string | undefined
  /** Re-reads the token after a 401; true when it changed (worth retrying). */
  reload(): boolean
}

export function tokenSource(auth: KubeAuth, recheckMs: number): TokenSource {
  switch (auth.kind) {
    case 'none':
      return { header: () => undefined, reload: () => false }
    case 'token': {
      const header = `Bearer ${auth.token}`
      return { header: () => header, reload: () => false }
    }
    case 'basic': {
      const header = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`
      return { header: () => header, reload: () => false }
    }
    case 'tokenFile':
      return new TokenFile(auth.path, auth.token, recheckMs)
  }
}

class TokenFile implements TokenSource {
  private token: string
  private stamp = ''
  private checkedAt = -Infinity

  constructor(private readonly path: string, initial: string, private readonly recheckMs: number) {
    this.token = initial
    this.stamp = this.statStamp()
  }

  header(now: number): string | undefined {
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now
      const stamp = this.statStamp()
      if (stamp !== this.stamp && stamp !== '') {
        this.stamp = stamp
        this.read()
      }
    }
    return this.token === '' ? undefined : `Bearer ${this.token}`
  }

  reload(): boolean {
    const before = this.token
    this.stamp = this.statStamp()
    this.read()
    return this.token !== before
  }

  private read(): void {
    try {
      const token = readFileSync(this.path, 'utf8').trim()
      // The kubelet swaps the file atomically; an empty read is a writer caught mid-way: keep the old one.
      if (token !== '') this.token = token
    } catch {
      // Gone for a moment (being replaced): keep sending the last token.
    }
  }

  private statStamp(): string {
    try {
      const s = statSync(this.path, { bigint: true })
      return `${s.ino}:${s.size}:${s.mtimeNs}`
    } catch {
      return ''
    }
  }
}
