import '../src/util/polyfill.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from '../src/testbed/processes.js'
import { synthBodies } from '../src/records/synthetic.js'
import { waitFor } from '../src/util/wait.js'
import { packageRoot } from '../src/util/paths.js'

/**
 * docs/dashboard.png for the README (issue #20): a local swarm of three daemons on loopback,
 * synthetic records imported on each (so authors, gossip and the heatmap have data), a few
 * OpenAI-style requests served by the first with the embedded model, then the first node's
 * dashboard in headless chromium, with a recommend answer, saved as a full-page screenshot.
 *
 *   npm run screenshot [-- --out docs/dashboard.png] [--api http://127.0.0.1:4100]   (--api: an already running node)
 */
const { values } = parseArgs({ options: { out: { type: 'string' }, api: { type: 'string' }, chromium: { type: 'string' } } })
const out = values.out ?? join(packageRoot(), 'docs', 'dashboard.png')

async function post (api: string, path: string, type: string, body: string): Promise<void> {
  const res = await fetch(`${api}${path}`, { method: 'POST', headers: { 'content-type': type }, body })
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
}

async function startSwarm (root: string): Promise<DaemonProcess[]> {
  // the first node scores its own selectors after training, so the quality panels have data
  const first = await spawnDaemon({ dataDir: join(root, 'p0'), port: 0, apiPort: 0, env: { SWARMTUNE__meta__evalIntervalMs: '1000' } })
  const rest = await Promise.all([1, 2].map(async i => await spawnDaemon({ dataDir: join(root, `p${i}`), port: 0, apiPort: 0, bootstrap: [loopbackAddr(first.info)] })))
  const all = [first, ...rest]
  await waitFor('peers connected', async () => (await (await fetch(`${first.info.api}/status`)).json()).peers >= 2, 30_000, 200)
  // a different amount per peer, so the per-author chart says something
  for (const [i, d] of all.entries()) await post(d.info.api, '/import', 'application/x-ndjson', synthBodies(400 - i * 120, 11 + i).map(b => JSON.stringify(b)).join('\n'))
  for (let i = 0; i < 3; i++) {
    await post(first.info.api, '/v1/chat/completions', 'application/json', JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: `Tell peer ${i} about the swarm.` }], max_tokens: 16 }))
  }
  return all
}

async function main (): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'swarmtune-screenshot-'))
  let swarm: DaemonProcess[] = []
  const browser = await chromium.launch({ executablePath: values.chromium ?? '/usr/bin/chromium', args: ['--no-sandbox', '--headless'] })
  try {
    let api = values.api
    if (api == null) {
      swarm = await startSwarm(root)
      api = swarm[0].info.api
    }
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
    await page.goto(`${api}/?poll=1000`)
    // best effort: the eval table and learning curve appear once the node has scored itself
    await waitFor('a held-out evaluation', async () => (await (await fetch(`${api}/meta/eval`)).json()).latest != null, 120_000, 1000).catch(() => {})
    await page.waitForFunction(() => Number(document.body.dataset.polls ?? 0) >= 12, undefined, { timeout: 60_000 })
    await page.click('#recommend-form button[type=submit]')
    await page.waitForSelector('#ranking tbody tr')
    await page.screenshot({ path: out, fullPage: true })
    process.stdout.write(`${out}\n`)
  } finally {
    await browser.close()
    await Promise.all(swarm.map(async d => { await d.stop() }))
    rmSync(root, { recursive: true, force: true })
  }
}

await main()
