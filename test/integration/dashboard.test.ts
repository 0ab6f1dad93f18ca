import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { cliPath } from '../../src/util/paths.js'
import { synthBodies } from '../../src/records/synthetic.js'
import { stableId } from '../../src/records/stable-id.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * Issue #20 item 1: the dashboard in a real headless browser (Debian's chromium through
 * playwright-core) against daemons started through the CLI (run `npm run build` first), with
 * real imported records, one of them from a model whose name is an HTML payload.
 */
const CHROMIUM = '/usr/bin/chromium'
const hasChromium = existsSync(CHROMIUM)
const XSS = '<img src=x onerror=alert(1)>'
/** the artifact: one fixed folder, overwritten each run (SWARMTUNE_TEST_ARTIFACTS to choose another) */
const ARTIFACTS = process.env.SWARMTUNE_TEST_ARTIFACTS ?? join(tmpdir(), 'swarmtune-test-artifacts')

let root: string
let d: DaemonProcess
let locked: DaemonProcess | undefined
let browser: Browser

async function post (api: string, path: string, type: string, body: string, token?: string): Promise<any> {
  const res = await fetch(`${api}${path}`, { method: 'POST', headers: { 'content-type': type, ...(token != null ? { authorization: `Bearer ${token}` } : {}) }, body })
  return await res.json()
}
async function get (api: string, path: string): Promise<any> {
  return await (await fetch(`${api}${path}`)).json()
}

/** 300 synthetic bodies and 6 of a model named like an HTML tag (baseline and one method, so it gets a heatmap row) */
function payload (): string {
  const bodies = synthBodies(300, 7)
  const evil = synthBodies(6, 9).map((b, i) => {
    const model = { ...b.model, name: XSS }
    return { ...b, model: { ...model, id: stableId({ x: model.name }) }, method: bodies.find(x => x.method.id === (i % 2 === 0 ? 'baseline' : 'prefix-cache'))!.method, hardware: bodies[0].hardware, workload: bodies[0].workload }
  })
  return [...bodies, ...evil].map(b => JSON.stringify(b)).join('\n')
}

/** what the page reported wrong: console errors, uncaught exceptions, dialogs (an executed payload) */
function watch (page: Page): { errors: string[], dialogs: string[] } {
  const seen = { errors: [] as string[], dialogs: [] as string[] }
  page.on('console', m => { if (m.type() === 'error') seen.errors.push(m.text()) })
  page.on('pageerror', e => { seen.errors.push(String(e)) })
  page.on('dialog', dlg => { seen.dialogs.push(dlg.message()); void dlg.dismiss() })
  return seen
}

async function polls (page: Page, n: number): Promise<void> {
  await page.waitForFunction(k => Number(document.body.dataset.polls ?? 0) >= k, n, { timeout: 30_000 })
}

describe.skipIf(!hasChromium)(`dashboard in a real browser (skipped when ${CHROMIUM} is missing: .ci/run installs Debian's chromium)`, () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'swarmtune-dashboard-'))
    // the node evaluates its selectors after training (learning curve panels; off by default in the testbed)
    d = await spawnDaemon({ dataDir: join(root, 'a'), port: 0, apiPort: 0, env: { SWARMTUNE__meta__evalIntervalMs: '1000' } })
    const report = await post(d.info.api, '/import', 'application/x-ndjson', payload())
    expect(report).toMatchObject({ imported: 306, errorCount: 0 })
    // the same snapshot answers the page and the test's own recommend
    await waitFor('meta-model trained on the import', async () => {
      const s = await get(d.info.api, '/status')
      return s.meta?.training === false && s.meta?.pendingRecords === 0 && s.snapshot != null
    }, 60_000, 200)
    await waitFor('the node evaluated its selectors', async () => (await get(d.info.api, '/meta/eval')).curve.length > 0, 90_000, 300)
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] })
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    await Promise.all([d?.stop(), locked?.stop()])
    rmSync(root, { recursive: true, force: true })
  })

  it('serves the page and its files with a strict CSP, and nothing else from its folder', async () => {
    const page = await fetch(`${d.info.api}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect((await fetch(`${d.info.api}/dashboard/chart.umd.js`)).status).toBe(200)
    expect((await fetch(`${d.info.api}/dashboard/../../package.json`)).status).toBe(404)
    expect((await fetch(`${d.info.api}/dashboard/index.html`)).status).toBe(404)
  })

  it('renders every panel from the live API, the payload as text, and the recommend answer', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
    const seen = watch(page)
    await page.goto(`${d.info.api}/?poll=300`)
    await polls(page, 6)
    for (const id of ['node', 'swarm', 'knows', 'serving', 'eval-quality']) expect(await page.isVisible(`#${id}`), id).toBe(true)
    expect(await page.textContent('#node-facts')).toContain(d.info.peerId)
    // charts were drawn: the canvases hold pixels and the series hold polled rates
    const drawn = await page.evaluate(() => ['rates-chart', 'authors-chart', 'tokens-chart', 'curve-chart'].map(id => {
      const c = document.getElementById(id) as HTMLCanvasElement
      const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
      let inked = 0
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) inked++
      return { id, inked, width: c.width }
    }))
    for (const c of drawn) expect(c.inked, c.id).toBeGreaterThan(100)
    const series = await page.evaluate(() => {
      const w = window as unknown as { Chart: { getChart: (id: string) => { data: { datasets: Array<{ data: unknown[] }> } } } }
      return { rates: w.Chart.getChart('rates-chart').data.datasets[2].data, authors: w.Chart.getChart('authors-chart').data.datasets[0].data }
    })
    expect(series.rates.length).toBeGreaterThanOrEqual(2)
    expect(series.rates.every(v => typeof v === 'number')).toBe(true)
    expect(series.authors).toEqual([306])
    // the eval table and the learning curve: the node's own evaluation, as GET /meta/eval gives it
    const ev = await get(d.info.api, '/meta/eval')
    const evalRows = await page.$$eval('#eval-table tbody tr', trs => trs.map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent)))
    expect(evalRows.map(r => r[0])).toEqual(ev.latest.rows.map((r: { selector: string, default?: true }) => r.selector + (r.default === true ? ' *' : '')))
    const def = ev.latest.rows.find((r: { default?: true }) => r.default === true)
    expect(evalRows.find(r => r[0]?.endsWith(' *'))?.[2]).toBe(def.regret.toFixed(3))
    const curve = await page.evaluate(() => {
      const w = window as unknown as { Chart: { getChart: (id: string) => { data: { datasets: Array<{ label: string, data: unknown[] }> } } } }
      return w.Chart.getChart('curve-chart').data.datasets.map(x => ({ label: x.label, data: x.data }))
    })
    type Pt = { rows: Array<{ selector: string, regret: number, default?: true }> }
    expect(curve[0]).toEqual({ label: def.selector, data: ev.curve.map((p: Pt) => p.rows.find(r => r.default === true)?.regret) })
    expect(curve[1]).toEqual({ label: 'single-best', data: ev.curve.map((p: Pt) => p.rows.find(r => r.selector === 'single-best')?.regret) })
    // the heatmap: speedups of the most-measured model by workload family
    const cells = await page.$$eval('#speedup tbody td', tds => tds.map(td => td.textContent))
    expect(cells.filter(t => t?.endsWith('×')).length).toBeGreaterThan(3)
    // the payload is an option's text, and no element was made from it
    const options = await page.$$eval('#model option', os => os.map(o => o.textContent))
    expect(options).toContain(`${XSS} (6 records)`)
    expect(await page.locator('img').count()).toBe(0)
    await page.selectOption('#model', { label: `${XSS} (6 records)` })
    expect(await page.textContent('#speedup tbody')).toContain('1.00×')
    await page.selectOption('#model', { index: 0 })
    await page.click('#recommend-form button[type=submit]')
    await page.waitForSelector('#ranking tbody tr')
    const shown = await page.$$eval('#ranking tbody tr td:nth-child(2)', tds => tds.map(td => td.textContent))
    const modelId = await page.inputValue('#model')
    const direct = await post(d.info.api, '/recommend', 'application/json', JSON.stringify({
      model: { id: modelId, name: (await page.textContent('#model option:checked'))!.replace(/ \(\d+ records\)$/, '') },
      family: await page.inputValue('#rec-family'),
      objective: 'throughput',
      features: { requests: 4, promptTokensMean: 256, outputTokensMean: 32, sharedPrefixRatio: 0.5 }
    }))
    expect(shown).toEqual(direct.ranking.map((r: { method: string }) => r.method))
    expect(seen).toEqual({ errors: [], dialogs: [] })
    mkdirSync(ARTIFACTS, { recursive: true })
    const shot = join(ARTIFACTS, 'dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    expect(statSync(shot).size).toBeGreaterThan(10_000)
    process.stderr.write(`dashboard screenshot: ${shot}\n`)
    await page.close()
  }, 90_000)

  it('`status --eval` prints the evaluation the panels show (JSON and text)', async () => {
    const ev = await get(d.info.api, '/meta/eval')
    const json = await promisify(execFile)(process.execPath, [cliPath(), 'status', '--eval', '--json', '--api', d.info.api])
    expect(JSON.parse(json.stdout)).toEqual(ev)
    const text = await promisify(execFile)(process.execPath, [cliPath(), 'status', '--eval', '--api', d.info.api])
    const def = ev.latest.rows.find((r: { default?: true }) => r.default === true)
    expect(text.stdout).toContain(`${def.selector} *`)
    expect(text.stdout).toContain(`curve: ${ev.curve.length as number} points`)
  })
  it('shows a served chat request in the served-choices panel, realized vs predicted', async () => {
    const chat = await post(d.info.api, '/v1/chat/completions', 'application/json', JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 4 }))
    expect(chat.choices).toHaveLength(1)
    const { choices } = await get(d.info.api, '/serving/choices?limit=5')
    expect(choices).toHaveLength(1)
    expect(choices[0]).toMatchObject({ model: 'tiny' })
    expect(choices[0].realizedTokensPerSecond).toBeGreaterThan(0)
    expect((await fetch(`${d.info.api}/serving/choices?limit=0`)).status).toBe(400)
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
    const seen = watch(page)
    await page.goto(`${d.info.api}/?poll=300`)
    await polls(page, 2)
    expect(await page.isVisible('#choices')).toBe(true)
    const rows = await page.$$eval('#choices-table tbody tr', trs => trs.map(tr => ({ method: (tr as HTMLElement).dataset.method, cells: [...tr.children].map(td => td.textContent) })))
    expect(rows).toHaveLength(1)
    expect(rows[0].method).toBe(choices[0].method)
    expect(rows[0].cells[4]).toBe(choices[0].realizedTokensPerSecond.toFixed(1))
    expect(await page.textContent('#choices-summary')).toMatch(/^1 recent served tasks/)
    // the chart holds the task when it had a prediction; the realized = predicted line is drawn either way
    const points = await page.evaluate(() => (window as unknown as { Chart: { getChart: (id: string) => { data: { datasets: Array<{ data: Array<{ x: number, y: number }> }> } } } }).Chart.getChart('choices-chart').data.datasets[0].data)
    expect(points).toEqual(choices[0].predictedTokensPerSecond != null ? [{ x: choices[0].predictedTokensPerSecond, y: choices[0].realizedTokensPerSecond }] : [])
    const inked = await page.evaluate(() => {
      const c = document.getElementById('choices-chart') as HTMLCanvasElement
      const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
      let n = 0
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++
      return n
    })
    expect(inked).toBeGreaterThan(100)
    expect(seen).toEqual({ errors: [], dialogs: [] })
    await page.close()
  }, 90_000)

  it('shows a bad form value as the API\'s error code and the daemon keeps answering', async () => {
    const page = await browser.newPage()
    const seen = watch(page)
    await page.goto(`${d.info.api}/?poll=300`)
    await polls(page, 1)
    // past the browser's own checks, as a hand-made request would be
    await page.evaluate(() => { const i = document.getElementById('rec-requests') as HTMLInputElement; i.removeAttribute('min'); i.value = '-3' })
    await page.click('#recommend-form button[type=submit]')
    await page.waitForFunction(() => (document.getElementById('rec-error')?.textContent ?? '') !== '')
    expect(await page.textContent('#rec-error')).toMatch(/^E_REQ_INVALID: /)
    expect(await page.isVisible('#ranking')).toBe(false)
    expect((await get(d.info.api, '/status')).peerId).toBe(d.info.peerId)
    // the 400 itself is logged by the browser as a failed resource; nothing else went wrong
    expect(seen.errors.filter(e => !e.includes('400'))).toEqual([])
    await page.close()
  }, 60_000)

  it('asks once for the token of a daemon that requires one and keeps it for the session', async () => {
    locked = await spawnDaemon({ dataDir: join(root, 'b'), port: 0, apiPort: 0, env: { SWARMTUNE__api__requireToken: 'true' } })
    const token = readFileSync(join(root, 'b', 'api-token'), 'utf8').trim()
    const page = await browser.newPage()
    watch(page)
    await page.goto(`${locked.info.api}/?poll=300`)
    await page.waitForSelector('#token-form', { state: 'visible' })
    expect(await page.isVisible('#node')).toBe(false)
    await page.fill('#token', 'wrong')
    await page.click('#token-form button')
    await page.waitForFunction(() => (document.getElementById('token-error')?.textContent ?? '').startsWith('E_BAD_TOKEN'))
    await page.fill('#token', token)
    await page.click('#token-form button')
    await polls(page, 2)
    expect(await page.textContent('#node-facts')).toContain(locked.info.peerId)
    // a reload within the session does not ask again
    await page.reload()
    await polls(page, 1)
    expect(await page.isVisible('#token-form')).toBe(false)
    expect(await page.evaluate(() => sessionStorage.getItem('swarmtune-api-token'))).toBe(token)
    await page.close()
  }, 60_000)
})
