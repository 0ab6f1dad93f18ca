import '../src/util/polyfill.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { DEFAULT_LEARN_OPTIONS, runLearn, samplesCsv, type LearnReport } from '../src/testbed/learn.js'
import { packageRoot } from '../src/util/paths.js'

/**
 * The learning curve as the daemons measure it (issue #17 item 6, #20): runs the testbed's learn
 * scenario (N fresh daemons through the CLI, background sweep on, in-daemon evaluation after
 * training; src/testbed/learn.ts), writes its samples as JSON and CSV, and renders the figure
 * (each peer's default-selector regret and single-best regret against time) with Chart.js in
 * headless chromium as a PNG.
 *
 *   npm run bench:learn -- [--peers 3] [--minutes 8] [--model tiny] [--out-dir /tmp/learn] [--png docs/learning-curve.png]
 *   npm run bench:learn -- --from report.json   (re-render a saved run)
 */
const { values: f } = parseArgs({ options: { peers: { type: 'string' }, minutes: { type: 'string' }, model: { type: 'string' }, 'out-dir': { type: 'string' }, png: { type: 'string' }, from: { type: 'string' }, chromium: { type: 'string' } } })
const outDir = f['out-dir'] ?? join(packageRoot(), 'tmp', 'learn')
const png = f.png ?? join(packageRoot(), 'docs', 'learning-curve.png')

async function render (r: LearnReport, file: string): Promise<void> {
  const chartJs = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.js')
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b']
  const datasets: unknown[] = []
  for (let p = 0; p < r.peers; p++) {
    const mine = r.samples.filter(s => s.peer === p)
    const pts = (k: 'defaultRegret' | 'singleBestRegret'): Array<{ x: number, y: number }> => mine.filter(s => s[k] != null).map(s => ({ x: s.t / 60, y: s[k] as number }))
    const c = colors[p % colors.length]
    datasets.push({ label: `peer ${p}: default selector`, data: pts('defaultRegret'), borderColor: c, backgroundColor: c, borderWidth: 2, pointRadius: 0, stepped: true })
    datasets.push({ label: `peer ${p}: single-best`, data: pts('singleBestRegret'), borderColor: c, backgroundColor: c, borderWidth: 1.5, borderDash: [6, 4], pointRadius: 0, stepped: true })
  }
  const title = `${r.peers} fresh daemons (${r.model} model, background sweep on): held-out regret of each daemon's selectors on its own history; ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} cores, load ${r.loadavg1.start.toFixed(1)} → ${r.loadavg1.end.toFixed(1)}`
  const browser = await chromium.launch({ executablePath: f.chromium ?? '/usr/bin/chromium', args: ['--no-sandbox', '--headless'] })
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 560 } })
    await page.setContent('<html><body style="margin:0;background:#fff"><div style="width:1100px;height:560px"><canvas id="c"></canvas></div></body></html>')
    await page.addScriptTag({ path: chartJs })
    await page.evaluate(({ datasets, title }) => {
      const w = window as unknown as { Chart: new (el: HTMLCanvasElement, cfg: unknown) => unknown }
      return new w.Chart(document.getElementById('c') as HTMLCanvasElement, {
        type: 'line',
        data: { datasets },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          plugins: { title: { display: true, text: title, font: { size: 12 } }, legend: { position: 'bottom' } },
          scales: { x: { type: 'linear', title: { display: true, text: 'minutes since the first daemon started' } }, y: { beginAtZero: true, title: { display: true, text: 'regret 1 − perf(choice)/perf(best), held-out folds' } } }
        }
      })
    }, { datasets, title })
    await page.locator('div').first().screenshot({ path: file })
  } finally {
    await browser.close()
  }
}

async function main (): Promise<void> {
  let report: LearnReport
  if (f.from != null) {
    const { readFileSync } = await import('node:fs')
    report = JSON.parse(readFileSync(f.from, 'utf8')) as LearnReport
  } else {
    const d = DEFAULT_LEARN_OPTIONS
    report = await runLearn({ ...d, peers: Number(f.peers ?? d.peers), minutes: Number(f.minutes ?? d.minutes), model: f.model ?? d.model, progress: line => { process.stderr.write(line + '\n') } })
    mkdirSync(outDir, { recursive: true })
    writeFileSync(join(outDir, 'learn.json'), JSON.stringify(report, null, 1) + '\n')
    writeFileSync(join(outDir, 'learn.csv'), samplesCsv(report.samples))
    process.stdout.write(`${join(outDir, 'learn.json')}\n${join(outDir, 'learn.csv')}\n`)
  }
  await render(report, png)
  const last = new Map(report.samples.map(s => [s.peer, s]))
  for (const [p, s] of last) process.stdout.write(`peer ${p}: ${s.records} records of ${s.authors} authors; default ${s.defaultSelector ?? '-'} regret ${s.defaultRegret?.toFixed(4) ?? '-'}, single-best ${s.singleBestRegret?.toFixed(4) ?? '-'}, per-workload-best ${s.perWorkloadBestRegret?.toFixed(4) ?? '-'} (${s.tasks ?? 0} tasks, ${s.split ?? '-'} split)\n`)
  process.stdout.write(`${png}\nload ${report.loadavg1.start.toFixed(1)} → ${report.loadavg1.end.toFixed(1)}\n`)
}

await main()
