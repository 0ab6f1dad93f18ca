import '../src/util/polyfill.js'
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadConfig } from '../src/node/config.js'
import { createRecord, toWire, validateBody, RECORD_VERSION, type SignedRecord } from '../src/records/index.js'
import { hardwareLabel } from '../src/engine/hardware.js'
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
    'request-scale': { type: 'string' },
    records: { type: 'string' },
    table: { type: 'string' },
    json: { type: 'boolean' },
    'no-drift': { type: 'boolean' }
  }
})

/** One record as a JSONL line: id, base64 wire envelope (verifiable), decoded body. */
const wireLine = (r: SignedRecord): string => JSON.stringify({ id: r.id, wire: Buffer.from(toWire(r)).toString('base64'), body: r.body })

const csv = (s?: string): string[] | undefined => s?.split(',').map(x => x.trim()).filter(Boolean)

async function main (): Promise<void> {
  const config = loadConfig({ overrides: { dataDir: resolve(f['data-dir'] as string) } })
  mkdirSync(config.dataDir, { recursive: true })
  const prepared = await prepareBench(config, {
    model: f.model, methods: csv(f.methods), workloads: csv(f.workloads), repeats: Number(f.repeats), scale: f.scale as Scale,
    promptScale: f['prompt-scale'] != null ? Number(f['prompt-scale']) : undefined,
    requestScale: f['request-scale'] != null ? Number(f['request-scale']) : undefined
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
  const partial = join(config.dataDir, `findings-partial-${process.pid}.jsonl`)
  const sign = async (cell: BenchCellResult): Promise<void> => {
    const now = Date.now()
    const body = { ...cell.body, v: RECORD_VERSION, author, seq, timestamp: now }
    validateBody(body, now)
    const rec = await createRecord(key, author, seq++, cell.body, now)
    records.push(rec)
    results.push(cell)
    // kept as we go, so an interrupted run loses nothing measured
    appendFileSync(partial, wireLine(rec) + '\n')
  }
  // SIGINT: stop after the current run and still write the table and the records
  const ac = new AbortController()
  process.once('SIGINT', () => { ac.abort() })
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
      onResult: sign,
      signal: ac.signal
    })
    if (f['no-drift'] !== true && !ac.signal.aborted) {
      // the baseline again at the end: machine load drifts over a long run, and every speedup
      // compares against the baseline measured at the start
      process.stderr.write('drift check: baseline again\n')
      await runBenchmark({
        engine, model: prepared.model, methods: [prepared.baseline], workloads: prepared.workloads, repeats: prepared.repeats,
        timeoutMs: Number(f['timeout-ms']), defaultThreads: prepared.defaultThreads, pricePerHour: prepared.pricePerHour,
        onResult: async cell => { drift.push(cell); await sign(cell) },
        signal: ac.signal
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
    write(out, records.map(wireLine).join('\n') + '\n')
    process.stderr.write(`wrote ${records.length} signed records to ${out}\n`)
  }
  const driftRow = (key: 'wallMs' | 'cpuMs'): string => {
    if (drift.length === 0) return ''
    const fams = [...new Set(summaries.map(r => r.family))]
    const ratio = (fam: string): string => {
      const a = summaries.find(r => r.method === BASELINE_ID && r.family === fam)
      const d = drift.find(r => r.family === fam)
      const b = d != null ? summarizeCell(d) : undefined
      return a?.ok === true && b?.ok === true && (b[key] ?? 0) > 0 ? ((a[key] ?? 0) / (b[key] as number)).toFixed(2) : '?'
    }
    return `\n| *drift: baseline at start / at end* | ${fams.map(ratio).join(' | ')} |`
  }
  const order = prepared.methods.map(m => m.id)
  const table = [
    '**Speedup by wall time** (baseline wall / method wall, same workload, same run; † = greedy output diverged from the baseline):',
    '',
    speedupTable(summaries, order, 'wallMs') + driftRow('wallMs'),
    '',
    '**Speedup by CPU time of the benchmarking process** (steadier under other load; counts spinning threads, ignores waiting):',
    '',
    speedupTable(summaries, order, 'cpuMs') + driftRow('cpuMs')
  ].join('\n')
  let cpu = ''
  try { cpu = execFileSync('lscpu', { encoding: 'utf8' }).split('\n').find(l => l.startsWith('Model name'))?.split(':')[1].trim() ?? '' } catch {}
  const header = [
    `model: ${prepared.model.name} (${results[0]?.body.model.fileType ?? '?'}), repeats: ${prepared.repeats} (+1 warm-up), scale: ${f.scale}${f['prompt-scale'] != null ? `, prompt lengths × ${f['prompt-scale']}` : ''}${f['request-scale'] != null ? `, requests × ${f['request-scale']}` : ''}`,
    `machine: ${cpu || hw?.cpuModel} (${hw?.cores ?? '?'} cores, ${hw?.ramMiB ?? '?'} MiB), backend ${hw?.backend ?? '?'}, ${results[0]?.body.engine.version ?? ''}`,
    `date: ${started.toISOString()}, duration ${minutes.toFixed(1)} min, hardware label ${label}`
  ].join('\n')
  const doc = `${header}\n\n${table}\n\n<details><summary>raw results</summary>\n\n\`\`\`\n${formatSummaries(summaries)}\`\`\`\n</details>\n`
  if (f.table != null) writeFileSync(f.table, doc)
  if (f.json === true) process.stdout.write(JSON.stringify(summaries, null, 2) + '\n')
  else process.stdout.write(doc)
}

/** Methods × families: speedup over the baseline on the same workload, by wall or CPU time. */
function speedupTable (rows: BenchSummary[], methodOrder: string[], key: 'wallMs' | 'cpuMs'): string {
  const families = [...new Set(rows.map(r => r.family))]
  const t = (r: BenchSummary | undefined): number => r?.[key] ?? 0
  const base = (fam: string): BenchSummary | undefined => rows.find(x => x.method === BASELINE_ID && x.family === fam)
  const cell = (m: string, fam: string): string => {
    const r = rows.find(x => x.method === m && x.family === fam)
    const b = base(fam)
    if (r == null) return ''
    if (r.skipped != null) return 'skip'
    if (!r.ok) return (r.error ?? 'fail').split(':')[0]
    if (b == null || !b.ok || t(r) <= 0) return '?'
    return `${(t(b) / t(r)).toFixed(2)}${r.diverged === true ? '†' : ''}`
  }
  const best = new Map(families.map(fam => {
    let top = ''
    let v = 0
    for (const m of methodOrder) {
      const r = rows.find(x => x.method === m && x.family === fam)
      if (r?.ok === true && r.diverged !== true && t(r) > 0 && (v === 0 || t(r) < v)) { v = t(r); top = m }
    }
    return [fam, top]
  }))
  const lines = [
    `| method | ${families.join(' | ')} |`,
    `|---|${families.map(() => '---:').join('|')}|`,
    ...methodOrder.map(m => `| ${m} | ${families.map(fam => { const c = cell(m, fam); return best.get(fam) === m ? `**${c}**` : c }).join(' | ')} |`),
    `| *baseline ${key === 'wallMs' ? 'wall' : 'CPU'} ms* | ${families.map(fam => t(base(fam)).toFixed(0)).join(' | ')} |`
  ]
  return lines.join('\n')
}

main().catch(err => {
  process.stderr.write(`bench-findings: ${(err as Error).message} [${(err as { code?: string }).code ?? 'E_INTERNAL'}]\n`)
  process.exitCode = 1
})
