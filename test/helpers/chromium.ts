/**
 * Headless Chromium (Debian `chromium`) driven over the DevTools protocol on a pipe
 * (--remote-debugging-pipe: NUL-terminated JSON on fds 3 and 4), so no WebSocket client and no
 * browser download is needed. Runs inside a test namespace (which has no route out); every
 * network feature that would phone home is off. close() kills it by PID and removes its profile.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'

export const CHROMIUM = '/usr/bin/chromium'

export interface Page {
  /** Runs `expression` in the page and returns its (JSON) value. */
  evaluate<T>(expression: string): Promise<T>
  /** Saves a PNG of the viewport. */
  screenshot(path: string): Promise<void>
}

export interface Browser {
  readonly pid: number
  open(url: string): Promise<Page>
  close(): Promise<void>
}

export async function launchChromium(netns: string): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'weft-chromium-'))
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--no-default-browser-check', '--disable-extensions',
    '--metrics-recording-only', '--disable-default-apps', '--mute-audio', '--window-size=1000,900',
    `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank']
  const child: ChildProcess = spawn('ip', ['netns', 'exec', netns, 'setpriv', '--pdeathsig', 'KILL', CHROMIUM, ...args], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000) })
  const toBrowser = child.stdio[3] as Writable
  const fromBrowser = child.stdio[4] as Readable
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let nextId = 1
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  let buffer = ''
  fromBrowser.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8')
    let nul: number
    while ((nul = buffer.indexOf('\0')) >= 0) {
      const msg = JSON.parse(buffer.slice(0, nul)) as { id?: number; result?: unknown; error?: { message: string } }
      buffer = buffer.slice(nul + 1)
      const p = msg.id === undefined ? undefined : pending.get(msg.id)
      if (!p) continue
      pending.delete(msg.id!)
      if (msg.error) p.reject(new Error(`CDP: ${msg.error.message}`))
      else p.resolve(msg.result)
    }
  })
  void exited.then(() => { for (const p of pending.values()) p.reject(new Error(`chromium exited: ${stderr}`)) })
  const send = <T>(method: string, params: object = {}, sessionId?: string): Promise<T> => new Promise((resolve, reject) => {
    const id = nextId++
    const timer = setTimeout(() => { pending.delete(id); reject(new Error(`CDP ${method} timed out; chromium stderr: ${stderr}`)) }, 30_000)
    pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v as T) }, reject: (e) => { clearTimeout(timer); reject(e) } })
    toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0')
  })
  await send('Browser.getVersion')
  return {
    pid: child.pid!,
    open: async (url) => {
      const { targetId } = await send<{ targetId: string }>('Target.createTarget', { url })
      const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true })
      return {
        evaluate: async <T>(expression: string) => {
          const r = await send<{ result: { value?: T }; exceptionDetails?: { text: string } }>('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, sessionId)
          if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.text}`)
          return r.result.value as T
        },
        screenshot: async (path) => {
          const { data } = await send<{ data: string }>('Page.captureScreenshot', { format: 'png' }, sessionId)
          writeFileSync(path, Buffer.from(data, 'base64'))
        },
      }
    },
    close: async () => {
      // Browser.close lets Chromium end its renderer and utility processes itself; SIGKILL by PID if it hangs.
      await send('Browser.close').catch(() => {})
      const timer = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL') } catch { /* gone */ } }, 5000)
      await exited
      clearTimeout(timer)
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
