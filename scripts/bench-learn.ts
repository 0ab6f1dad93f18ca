import '../src/util/polyfill.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { DEFAULT_LEARN_OPTIONS, runLearn, samplesCsv, type LearnReport } from '../src/testbed/learn.js'
import { goalCheck } from '../src/testbed/learn-score.js'
import { packageRoot } from '../src/util/paths.js'

/**
 * The learning curve of issue #17 item 6: runs the testbed's learn scenario (a ground-truth
 * table measured by a lone daemon, then N fresh daemons through the CLI with the background
 * sweep on serving a paced mixed stream of the table's task types; src/testbed/learn.ts),
 * writes the report as JSON and the windows as CSV, and renders the figure (per window: mean
 * regret of the served choices, always-baseline, always-single-best) with Chart.js in headless
 * chromium as a PNG. Prints the goal check.
 *
 *   npm run bench:learn -- [--peers 3] [--minutes 6] [--model tiny] [--families a,b] [--window-seconds 60] [--table-repeats 9]
 *                          [--out-dir tmp/learn] [--png docs/learning-curve.png]
 *   npm run bench:learn -- --from report.json   (re-render a saved run)
 */
const { values: f } = parseArgs({ options: { peers: { type: 'string' }, minutes: { type: 'string' }, families: { type: 'string' }, 'window-seconds': { type: 'string' }, model: { type: 'string' }, 'table-repeats': { type: 'string' }, 'out-dir': { type: 'string' }, png: { type: 'string' }, from: { type: 'string' }, chromium: { type: 'string' } } })
const outDir = f['out-dir'] ?? join(packageRoot(), 'tmp', 'learn')
const png = f.png ?? join(packageRoot(), 'docs', 'learning-curve.png')

async function render (r: LearnReport, file: string): Promise<void> {
  const chartJs = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.js')
  const pts = (k: 'regret' | 'baselineRegret' | 'singleBestRegret'): Array<{ x: number, y: number }> => r.windows.map(w => ({ x: w.t / 60, y: w[k] }))
  const datasets = [
    { label: 'served choices (the swarm)', data: pts('regret'), borderColor: '#1f77b4', backgroundColor: '#1f77b4', borderWidth: 2.5, pointRadius: 3 },
    { label: `always single-best in hindsight (${r.table.singleBest})`, data: pts('singleBestRegret'), borderColor: '#2ca02c', backgroundColor: '#2ca02c', borderWidth: 1.5, borderDash: [6, 4], pointRadius: 2 },
    { label: 'always baseline', data: pts('baselineRegret'), borderColor: '#d62728', backgroundColor: '#d62728', borderWidth: 1.5, borderDash: [2, 3], pointRadius: 2 }
  ]
  const title = `${r.peers} fresh daemons (${r.model} model, sweep on) serving ${r.families.join('/')} round-robin: mean regret per ${r.windowSeconds} s window vs a table measured here first (${r.table.seconds.toFixed(0)} s); ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} cores, load ${r.loadavg1.start.toFixed(1)} → ${r.loadavg1.end.toFixed(1)}`
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
          scales: { x: { type: 'linear', title: { display: true, text: 'minutes since the first swarm daemon started (end of window)' } }, y: { beginAtZero: true, title: { display: true, text: 'mean regret 1 − perf(chosen)/perf(best in table)' } } }
        }
      })
    }, { datasets, title })
    await page.locator('div').first().screenshot({ path: file })
  } finally {
    await browser.close()
  }
}

function windowsCsv (r: LearnReport): string {
  return ['t,regret,baselineRegret,singleBestRegret,served', ...r.windows.map(w => [w.t, w.regret, w.baselineRegret, w.singleBestRegret, w.served].join(','))].join('\n') + '\n'
}

async function main (): Promise<void> {
  let report: LearnReport
  if (f.from != null) {
    const { readFileSync } = await import('node:fs')
    report = JSON.parse(readFileSync(f.from, 'utf8')) as LearnReport
  } else {
    const d = DEFAULT_LEARN_OPTIONS
    report = await runLearn({
      ...d,
      peers: Number(f.peers ?? d.peers),
      minutes: Number(f.minutes ?? 6),
      model: f.model ?? d.model,
      families: f.families?.split(',') ?? d.families,
      windowSeconds: Number(f['window-seconds'] ?? d.windowSeconds),
      tableRepeats: Number(f['table-repeats'] ?? d.tableRepeats),
      progress: line => { process.stderr.write(line + '\n') }
    })
    mkdirSync(outDir, { recursive: true })
    writeFileSync(join(outDir, 'learn.json'), JSON.stringify(report, null, 1) + '\n')
    writeFileSync(join(outDir, 'learn-windows.csv'), windowsCsv(report))
    writeFileSync(join(outDir, 'learn-heldout.csv'), samplesCsv(report.heldOut.samples))
    process.stdout.write(`${join(outDir, 'learn.json')}\n${join(outDir, 'learn-windows.csv')}\n`)
  }
  // a box without chromium still gets the report, the windows and the goal check (re-render later with --from)
  let rendered = true
  try {
    await render(report, png)
  } catch (err) {
    rendered = false
    process.stderr.write(`figure not rendered (${(err as Error).message.split('\n')[0]}); re-render with --from ${f.from ?? join(outDir, 'learn.json')} --chromium <path>\n`)
  }
  for (const w of report.windows) process.stdout.write(`window to ${w.t} s: regret ${w.regret.toFixed(4)}, baseline ${w.baselineRegret.toFixed(4)}, single-best ${w.singleBestRegret.toFixed(4)} (${w.served} served)\n`)
  const methods = new Map<string, number>()
  for (const s of report.served) methods.set(`${s.method} (${s.source})`, (methods.get(`${s.method} (${s.source})`) ?? 0) + 1)
  process.stdout.write(`served ${report.served.length}, unscored ${report.unscored}, errors ${JSON.stringify(report.errors)}; choices ${JSON.stringify(Object.fromEntries(methods))}\n`)
  process.stdout.write(`table ${report.table.seconds} s; single best ${report.table.singleBest} (mean regret ${report.table.singleBestMeanRegret.toFixed(4)})\n`)
  const g = goalCheck(report.windows)
  process.stdout.write(g == null ? 'goal: fewer than 2 windows, not checked\n' : `goal (last < first and last <= single-best): ${g.holds ? 'holds' : 'does not hold'} (below first: ${g.belowFirst}, <= single-best: ${g.atMostSingleBest})\n`)
  process.stdout.write(`${rendered ? png : '(no figure)'}\nload ${report.loadavg1.start.toFixed(1)} → ${report.loadavg1.end.toFixed(1)}\n`)
}

await main()
