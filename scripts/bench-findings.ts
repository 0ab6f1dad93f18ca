import '../src/util/polyfill.js'
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadConfig } from '../src/node/config.js'
import { createRecord, toWire, validateBody, RECORD_VERSION, type SignedRecord } from '../src/records/index.js'
import { hardwareLabel } from '../src/bench/hardware.js'
import { llamaEngineFactory, prepareBench, summarizeCell, formatSummaries, type BenchSummary } from '../src/bench/prepare.js'
import { createProgress } from '../src/bench/progress.js'
import { runBenchmark, BASELINE_ID, type BenchCellResult } from '../src/bench/runner.js'
import type { Scale } from '../src/bench/workloads.js'

/*
 * The FINDINGS run: every method × one workload of each family on one model, then a markdown
 * table of speedups (baseline wall time / method wall time, same workload, same run) and the
 * signed records as JSONL (one {id, wire, body} per line: `wire` is the base64 wire envelope,
 * verifiable with verifyWire; `body` the decoded body).
 *
 *   node dist/scripts/bench-findings.js --model small --repeats 3 \
 *     --data-dir /tmp/swarmtune-findings --records 'test/fixtures/history-<label>.jsonl' --table /tmp/findings.md
 * (`<label>` becomes the hardware label; --append adds to the records file instead of replacing it)
 */
const { values: f } = parseArgs({
  options: {
    model: { type: 'string', default: 'small' },
    methods: { type: 'string' },
    workloads: { type: 'string' },
    repeats: { type: 'string', default: '3' },
    scale: { type: 'string', default: 'default' },
    'data-dir': { type: 'string', default: '.swarmtune-findings' },
    'timeout-ms': { type: 'string', default: '60000' },
    append: { type: 'boolean' },
    'prompt-scale': { type: 'string' },
    records: { type: 'string' },
    table: { type: 'string' },
    json: { type: 'boolean' },
    'no-drift': { type: 'boolean' }
  }
})

const csv = (s?: string): string[] | undefined => s?.split(',').map(x => x.trim()).filter(Boolean)

async function main (): Promise<void> {
  const config = loadConfig({ overrides: { dataDir: resolve(f['data-dir'] as string) } })
  mkdirSync(config.dataDir, { recursive: true })
  const prepared = await prepareBench(config, {
    model: f.model, methods: csv(f.methods), workloads: csv(f.workloads), repeats: Number(f.repeats), scale: f.scale as Scale,
    promptScale: f['prompt-scale'] != null ? Number(f['prompt-scale']) : undefined
  })
  const engine = await llamaEngineFactory(config)
  const key = await generateKeyPair('Ed25519')
  const author = peerIdFromPrivateKey(key).toString()
  const cells = prepared.methods.length * prepared.workloads.length
  const progress = createProgress({ total: cells * (prepared.repeats + 1), title: 'findings' })
  let last = 0
  const started = new Date()
  const t0 = performance.now()
  const records: SignedRecord[] = []
  const results: BenchCellResult[] = []
  let seq = 1
  const sign = async (cell: BenchCellResult): Promise<void> => {
    const now = Date.now()
    const body = { ...cell.body, v: RECORD_VERSION, author, seq, timestamp: now }
    validateBody(body, now)
    records.push(await createRecord(key, author, seq++, cell.body, now))
    results.push(cell)
  }
  const drift: BenchCellResult[] = []
  try {
    await runBenchmark({
      engine,
      model: prepared.model,
      methods: prepared.methods,
      workloads: prepared.workloads,
      baseline: prepared.baseline,
      repeats: prepared.repeats,
      timeoutMs: Number(f['timeout-ms']),
      defaultThreads: prepared.defaultThreads,
      pricePerHour: prepared.pricePerHour,
      onProgress: ev => {
        progress.setTotal(ev.total)
        if (ev.done > last) progress.tick(`${ev.method} × ${ev.workload}`, ev.done - last)
        last = ev.done
        if (ev.phase === 'skipped' || ev.phase === 'failed') progress.note(`${ev.method} × ${ev.workload}: ${ev.phase} ${ev.message ?? ''}`)
      },
      onResult: sign
    })
    if (f['no-drift'] !== true) {
      // the baseline again at the end: machine load drifts over a long run, and every speedup
      // compares against the baseline measured at the start
      process.stderr.write('drift check: baseline again\n')
      await runBenchmark({
        engine, model: prepared.model, methods: [prepared.baseline], workloads: prepared.workloads, repeats: prepared.repeats,
        timeoutMs: Number(f['timeout-ms']), defaultThreads: prepared.defaultThreads, pricePerHour: prepared.pricePerHour,
        onResult: async cell => { drift.push(cell); await sign(cell) }
      })
    }
  } finally {
    progress.done()
    await engine.close()
  }
  const minutes = (performance.now() - t0) / 60000
  const summaries = results.map((c, i) => summarizeCell(c, records[i])).filter((_s, i) => !drift.includes(results[i]))
  const hw = results[0]?.body.hardware
  const label = hw != null ? hardwareLabel(hw) : 'unknown'
  if (f.records != null) {
    const out = f.records.replace('<label>', label)
    mkdirSync(dirname(out), { recursive: true })
    const write = f.append === true ? appendFileSync : writeFileSync
    write(out, records.map(r => JSON.stringify({ id: r.id, wire: Buffer.from(toWire(r)).toString('base64'), body: r.body })).join('\n') + '\n')
    process.stderr.write(`wrote ${records.length} signed records to ${out}\n`)
  }
  let table = speedupTable(summaries, prepared.methods.map(m => m.id))
  if (drift.length > 0) {
    const fams = [...new Set(summaries.map(r => r.family))]
    const ratio = (fam: string): string => {
      const a = summaries.find(r => r.method === BASELINE_ID && r.family === fam)
      const b = drift.find(r => r.family === fam)?.body.result
      return a?.ok === true && b?.ok === true ? (a.wallMs / b.wallMs).toFixed(2) : '?'
    }
    table += `\n| *drift: baseline at start / at end* | ${fams.map(ratio).join(' | ')} |`
  }
  let cpu = ''
  try { cpu = execFileSync('lscpu', { encoding: 'utf8' }).split('\n').find(l => l.startsWith('Model name'))?.split(':')[1].trim() ?? '' } catch {}
  const header = [
    `model: ${prepared.model.name} (${results[0]?.body.model.fileType ?? '?'}), repeats: ${prepared.repeats} (+1 warm-up), scale: ${f.scale}${f['prompt-scale'] != null ? ` with prompt lengths × ${f['prompt-scale']}` : ''}`,
    `machine: ${cpu || hw?.cpuModel} (${hw?.cores ?? '?'} cores, ${hw?.ramMiB ?? '?'} MiB), backend ${hw?.backend ?? '?'}, ${results[0]?.body.engine.version ?? ''}`,
    `date: ${started.toISOString()}, duration ${minutes.toFixed(1)} min, hardware label ${label}`
  ].join('\n')
  const doc = `${header}\n\n${table}\n\n<details><summary>raw results</summary>\n\n\`\`\`\n${formatSummaries(summaries)}\`\`\`\n</details>\n`
  if (f.table != null) writeFileSync(f.table, doc)
  if (f.json === true) process.stdout.write(JSON.stringify(summaries, null, 2) + '\n')
  else process.stdout.write(doc)
}

/** Methods × families: speedup of wall time over the baseline on the same workload. */
function speedupTable (rows: BenchSummary[], methodOrder: string[]): string {
  const families = [...new Set(rows.map(r => r.family))]
  const cell = (m: string, fam: string): string => {
    const r = rows.find(x => x.method === m && x.family === fam)
    const b = rows.find(x => x.method === BASELINE_ID && x.family === fam)
    if (r == null) return ''
    if (r.skipped != null) return 'skip'
    if (!r.ok) return 'fail'
    if (b == null || !b.ok) return '?'
    const s = b.wallMs / r.wallMs
    return `${s.toFixed(2)}${r.diverged === true ? '†' : ''}`
  }
  const best = new Map(families.map(fam => {
    let top = ''
    let v = 0
    for (const m of methodOrder) {
      const r = rows.find(x => x.method === m && x.family === fam)
      if (r?.ok === true && r.diverged !== true && r.wallMs > 0 && (v === 0 || r.wallMs < v)) { v = r.wallMs; top = m }
    }
    return [fam, top]
  }))
  const lines = [
    `| method | ${families.join(' | ')} |`,
    `|---|${families.map(() => '---:').join('|')}|`,
    ...methodOrder.map(m => `| ${m} | ${families.map(fam => { const c = cell(m, fam); return best.get(fam) === m ? `**${c}**` : c }).join(' | ')} |`),
    `| *baseline wall ms* | ${families.map(fam => rows.find(x => x.method === BASELINE_ID && x.family === fam)?.wallMs.toFixed(0) ?? '').join(' | ')} |`
  ]
  return lines.join('\n')
}

main().catch(err => {
  process.stderr.write(`bench-findings: ${(err as Error).message} [${(err as { code?: string }).code ?? 'E_INTERNAL'}]\n`)
  process.exitCode = 1
})
