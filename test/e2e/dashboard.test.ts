/**
 * Acceptance (issue 17): `weft dashboard` in a real headless Chromium. Three vxlan hosts serve
 * their probe rows on the health port; the page shows one matrix cell per host pair, all green;
 * the vxlan port blocked on h3 turns exactly h3's cells red within a few seconds, without a
 * reload. A screenshot is kept in test-artifacts/. The RSS figures it prints are indicative;
 * bench/probe-row.bench.ts measures the cost against an unprobed host.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createTestbed, type TestHost } from '../helpers/testbed.ts'
import { REPO, WEFT, eventually, startCluster } from '../helpers/weftd.ts'
import { launchChromium, type Browser } from '../helpers/chromium.ts'

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false
const HEALTH = 8471

interface Cell { from: string; to: string; state: string }
const CELLS = `[...document.querySelectorAll('#matrix td[data-from]')].map((c) => ({ from: c.dataset.from, to: c.dataset.to, state: c.dataset.state }))`

const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])

test('weft dashboard in headless Chromium: full matrix, a blocked host turns its cells red live', { skip, timeout: 120_000 }, async () => {
  const bed = await createTestbed({ hosts: 3 })
  let browser: Browser | undefined
  try {
    await bed.putNetworkConfig({ Network: '10.5.0.0/16', Backend: { Type: 'vxlan' } })
    const runs = await startCluster(bed, [`--healthz-port=${HEALTH}`])
    const [h1, , h3] = bed.hosts as [TestHost, TestHost, TestHost]
    await new Promise((r) => setTimeout(r, 1000))
    const rssBefore = runs.map((r) => rssKiB(r.proc.pid))

    const endpoints = bed.hosts.map((h) => `${h.underlayIp}:${HEALTH}`).join(',')
    let serving = ''
    const dash = h1.spawn([process.execPath, WEFT, 'dashboard', '--hosts', endpoints], { onLine: (l) => { if (l.includes('serving')) serving = l } })
    await eventually('the dashboard to listen', async () => {
      if (!dash.isRunning()) throw new Error(`weft dashboard exited: ${dash.output()}`)
      return serving !== ''
    }, 10_000)
    assert.match(serving, /http:\/\/127\.0\.0\.1:8470\//, 'loopback by default')

    browser = await launchChromium(h1.netns)
    const page = await browser.open('http://127.0.0.1:8470/')
    const all = await eventually('six green cells', async () => {
      const cells = await page.evaluate<Cell[]>(CELLS)
      return cells.length === 6 && cells.every((c) => c.state === 'ok') ? cells : undefined
    }, 20_000, 200)
    const pairs = new Set(all.map((c) => `${c.from}>${c.to}`))
    assert.equal(pairs.size, 6, 'one cell per ordered host pair')
    for (const a of bed.hosts) for (const b of bed.hosts) if (a !== b) assert.ok(pairs.has(`${a.underlayIp}>${b.underlayIp}`))
    assert.equal(await page.evaluate<number>(`document.querySelectorAll('#picture circle').length`), 3, 'the picture has the three hosts')
    assert.match(await page.evaluate<string>(`document.querySelector('#hosts tbody').textContent`), /10\.5\.\d+\.0\/24\s*vxlan\s*1450\s*ready/)
    const rssProbing = runs.map((r) => rssKiB(r.proc.pid))
    await page.evaluate(`window.__noReload = 1`)

    const t0 = Date.now()
    await h3.exec('iptables', '-I', 'INPUT', '-p', 'udp', '--dport', '8472', '-j', 'DROP')
    const red = await eventually('h3\'s cells red', async () => {
      const cells = await page.evaluate<Cell[]>(CELLS)
      const involving = cells.filter((c) => c.from === h3.underlayIp || c.to === h3.underlayIp)
      return involving.length === 4 && involving.every((c) => c.state === 'fail') ? cells : undefined
    }, 15_000, 200)
    const ms = Date.now() - t0
    const others = red.filter((c) => c.from !== h3.underlayIp && c.to !== h3.underlayIp)
    assert.deepEqual(others.map((c) => c.state), ['ok', 'ok'], 'h1<->h2 stay green')
    assert.equal(await page.evaluate<number>(`window.__noReload`), 1, 'updated in place, no reload')
    assert.ok(ms < 10_000, `cells red within a few seconds, took ${ms} ms`)
    const dir = join(REPO, 'test-artifacts')
    mkdirSync(dir, { recursive: true })
    await page.screenshot(join(dir, 'dashboard-h3-blocked.png'))
    console.log(`# dashboard: h3's cells red ${ms} ms after the block; weftd RSS before the first /probes read ${rssBefore.map((k) => (k / 1024).toFixed(1)).join('/')} MiB, while probing ${rssProbing.map((k) => (k / 1024).toFixed(1)).join('/')} MiB`)
    await dash.stop()
  } finally {
    await browser?.close()
    await bed.destroy()
  }
})
