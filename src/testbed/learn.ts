import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiBench, apiGet, apiPost } from '../node/api-client.js'
import { generateWorkload, isFamily } from '../bench/workloads.js'
import { BASELINE_ID } from '../bench/runner.js'
import { errorCode, SwarmtuneError } from '../util/errors.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from './processes.js'
import { singleBestOf, streamSlot, swarmCellsOf, tableOf, windowsOf, type GroundTruth, type LearnWindow, type ServedDecision, type ServedTask, type SwarmCell } from './learn-score.js'

/**
 * The learning-curve scenario (`swarmtune testbed --scenario learn`, issue #17 item 6):
 * 1. the ground-truth table: one daemon started through the CLI, alone (no swarm, sweep off),
 *    measures every method on the task types (tiny-scale workloads of `families`) with
 *    `POST /bench`, then stops; its records never reach the swarm;
 * 2. N fresh daemons through the CLI, the first as bootstrap of the others, the background sweep
 *    on (tiny model, a larger share of wall time so the run fits minutes), serve a paced,
 *    mixed stream of those task types for `minutes`: real `POST /v1/completions` requests (the
 *    task type's prompts as one batch), round-robin over the peers, each answer's
 *    `swarmtune.method` being the method that served it;
 * 3. per window, the mean regret of the served choices against the table, next to
 *    always-baseline and always-single-best (single-best in hindsight from the table)
 *    (learn-score.ts).
 * Meanwhile it still samples each daemon's own held-out evaluation (`/meta/eval`, every
 * `sampleMs`), kept under `heldOut`.
 */
export interface LearnOptions {
  peers: number
  minutes: number
  /** engine.defaultModel of the daemons (the sweep's first pass runs on it) and the served model */
  model: string
  /** the task types: workload families at tiny scale */
  families: string[]
  /**
   * repeats per cell of the ground-truth table (median of them). 9 by default: with 3, the table's
   * own error on near-ties (~10 % on this box) was as large as the gaps it scores, and
   * always-single-best is read off the same table, so its error counted against the swarm only
   * (docs/BENCHMARKS.md, quiet learn runs of 2026-12-07 20:00 and 20:09 UTC)
   */
  tableRepeats: number
  /** width of a regret window, s */
  windowSeconds: number
  /** pause after each served request before the next, ms */
  paceMs: number
  sampleMs: number
  /** meta.evalIntervalMs of the daemons */
  evalIntervalMs: number
  /** bench.background.share of the daemons after the first pass */
  share: number
  /** ask the serving daemon's recommend for the same prompts after each served task (report `decisions`; default true) */
  explain?: boolean
  progress?: (line: string) => void
}

export const DEFAULT_LEARN_OPTIONS: Omit<LearnOptions, 'progress'> = {
  peers: 3, minutes: 8, model: 'tiny', families: ['chat', 'docqa', 'classify'], tableRepeats: 9, windowSeconds: 60, paceMs: 1000, sampleMs: 10_000, evalIntervalMs: 30_000, share: 0.5
}

export interface LearnSample {
  /** seconds since the first daemon was started */
  t: number
  peer: number
  records: number
  authors: number
  /** the daemon's latest curve point (null before its first evaluation) */
  evaluatedRecords: number | null
  tasks: number | null
  split: string | null
  defaultSelector: string | null
  defaultRegret: number | null
  singleBestRegret: number | null
  perWorkloadBestRegret: number | null
}

export interface LearnTable {
  /** task type → method → total tokens/s measured on this machine (0: failed) */
  perf: GroundTruth
  baseline: string
  singleBest: string
  singleBestMeanRegret: number
  /** how long the table took, s */
  seconds: number
}

export interface LearnReport {
  /** the issue's interface: per window, regrets of the served choices and the two fixed rules */
  windows: LearnWindow[]
  peers: number
  model: string
  minutes: number
  families: string[]
  windowSeconds: number
  startedAt: string
  loadavg1: { start: number, end: number }
  table: LearnTable
  /** every served request, in order */
  served: ServedTask[]
  /** served tasks that could not be scored (method or type not in the table) */
  unscored: number
  /** failed served requests by error code */
  errors: Record<string, number>
  /** per served task, the serving daemon's recommend answer for the same prompts right after it (why it chose) */
  decisions: ServedDecision[]
  /** the swarm's history at the end, as peer 0's store holds it: median tokens/s per (workload, method) */
  swarm: SwarmCell[]
  /** each daemon's background sweep at the end (`status.bench.background`: cells, aborted, busy time) */
  sweeps: unknown[]
  /** the daemons' own held-out evaluation, as sampled */
  heldOut: {
    samples: LearnSample[]
    /** each daemon's whole curve at the end (GET /meta/eval `curve`) */
    curves: CurvePointView[][]
  }
}

interface Row { selector: string, regret: number, top1: number, default?: true }
interface CurvePointView { at: number, records: number, authors: number, tasks: number, split: string, rows: Row[] }
interface EvalView { latest: unknown, curve: CurvePointView[] }
interface StatusView { records: number, authors: number }

/** The environment of a scenario daemon: the sweep on and quick, evaluation on, training often. */
export function learnEnv (o: Pick<LearnOptions, 'model' | 'evalIntervalMs' | 'share'>): Record<string, string> {
  return {
    SWARMTUNE__bench__background__enabled: 'true',
    SWARMTUNE__bench__background__share: String(o.share),
    // the default 10 s tick, not the share, would bound the sweep to a few cells a minute
    SWARMTUNE__bench__background__intervalMs: '1000',
    SWARMTUNE__bench__repeats: '1',
    SWARMTUNE__engine__defaultModel: o.model,
    SWARMTUNE__meta__evalIntervalMs: String(o.evalIntervalMs),
    SWARMTUNE__meta__retrainEveryRecords: '10',
    SWARMTUNE__meta__trees: '20'
  }
}

/** One sample row from a daemon's status and its latest curve point. */
export function sampleOf (t: number, peer: number, s: StatusView, e: EvalView): LearnSample {
  const p = e.curve.at(-1)
  const regret = (f: (r: Row) => boolean): number | null => p?.rows.find(f)?.regret ?? null
  const def = p?.rows.find(r => r.default === true)
  return {
    t,
    peer,
    records: s.records,
    authors: s.authors,
    evaluatedRecords: p?.records ?? null,
    tasks: p?.tasks ?? null,
    split: p?.split ?? null,
    defaultSelector: def?.selector ?? null,
    defaultRegret: def?.regret ?? null,
    singleBestRegret: regret(r => r.selector === 'single-best'),
    perWorkloadBestRegret: regret(r => r.selector === 'per-workload-best')
  }
}

const CSV_COLUMNS: Array<keyof LearnSample> = ['t', 'peer', 'records', 'authors', 'evaluatedRecords', 'tasks', 'split', 'defaultSelector', 'defaultRegret', 'singleBestRegret', 'perWorkloadBestRegret']

/** The samples as CSV (header line first). */
export function samplesCsv (samples: readonly LearnSample[]): string {
  const cell = (v: unknown): string => v == null ? '' : typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v)
  return [CSV_COLUMNS.join(','), ...samples.map(s => CSV_COLUMNS.map(c => cell(s[c])).join(','))].join('\n') + '\n'
}

async function startSwarm (root: string, o: LearnOptions): Promise<DaemonProcess[]> {
  const env = learnEnv(o)
  const first = await spawnDaemon({ dataDir: join(root, 'p0'), port: 0, apiPort: 0, env, timeoutMs: 120_000 })
  const daemons = [first]
  for (let i = 1; i < o.peers; i++) daemons.push(await spawnDaemon({ dataDir: join(root, `p${i}`), port: 0, apiPort: 0, env, bootstrap: [loopbackAddr(first.info)], timeoutMs: 120_000 }))
  return daemons
}

/** Step 1: a lone daemon (sweep off, no peers) measures every method on every task type; then it stops. */
export async function measureTable (root: string, o: Pick<LearnOptions, 'model' | 'families' | 'tableRepeats' | 'progress'>): Promise<LearnTable> {
  const t0 = Date.now()
  const d = await spawnDaemon({ dataDir: join(root, 'table'), port: 0, apiPort: 0, env: { SWARMTUNE__engine__defaultModel: o.model }, timeoutMs: 120_000 })
  try {
    let done = 0
    const cells = await apiBench(d.info.api, { model: o.model, workloads: o.families, scale: 'tiny', repeats: o.tableRepeats }, ev => {
      if (ev.phase === 'done' || ev.phase === 'failed' || ev.phase === 'skipped') o.progress?.(`table: ${++done} cells (${ev.method} on ${ev.workload}: ${ev.phase})`)
    })
    const perf = tableOf(cells)
    const sb = singleBestOf(perf)
    if (sb == null || perf[o.families[0]]?.[BASELINE_ID] == null) throw new SwarmtuneError('E_LEARN_TABLE', `the table has no method measured on every task type, or no baseline (${cells.length} cells)`)
    return { perf, baseline: BASELINE_ID, singleBest: sb.method, singleBestMeanRegret: sb.meanRegret, seconds: Math.round((Date.now() - t0) / 100) / 10 }
  } finally {
    await d.stop()
  }
}

interface CompletionView { swarmtune?: { method?: string, source?: string, explored?: boolean } }
interface RecommendView { source?: string, reason?: string, ranking?: Array<{ method: string, predicted?: { speedup?: number | null } }> }

/** The daemon's recommend answer for the prompts it just served: its source, reason and top three. */
async function explain (api: string, i: number, model: string, prompts: string[], maxTokens: number): Promise<ServedDecision> {
  const r = await apiPost<RecommendView>(api, '/recommend', JSON.stringify({ model: { name: model }, prompts, maxTokens, objective: 'throughput' }))
  return { i, source: String(r.source ?? ''), reason: r.reason ?? null, top: (r.ranking ?? []).slice(0, 3).map(x => ({ method: x.method, speedup: x.predicted?.speedup ?? null })) }
}

/** The record bodies a daemon holds, all pages. */
async function historyOf (api: string): Promise<SwarmCell[]> {
  const bodies: Array<Parameters<typeof swarmCellsOf>[0][number]> = []
  let cursor: string | undefined
  do {
    const page = await apiGet<{ records: Array<{ body: Parameters<typeof swarmCellsOf>[0][number] }>, cursor?: string }>(api, `/records?limit=10000${cursor != null ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    for (const r of page.records) bodies.push(r.body)
    cursor = page.cursor ?? undefined
  } while (cursor != null)
  return swarmCellsOf(bodies)
}

/** Step 2: the paced round-robin stream of task types over the peers until `end`. */
async function serveStream (daemons: DaemonProcess[], o: LearnOptions, t0: number, end: number): Promise<{ served: ServedTask[], errors: Record<string, number>, decisions: ServedDecision[] }> {
  const served: ServedTask[] = []
  const decisions: ServedDecision[] = []
  const errors: Record<string, number> = {}
  for (let i = 0; Date.now() < end; i++) {
    const { peer, family } = streamSlot(i, daemons.length, o.families)
    if (!isFamily(family)) throw new SwarmtuneError('E_USAGE', `unknown task type ${family}`)
    // a new task of the type each time: same shape as the table's workload, other text
    const w = generateWorkload(family, { seed: 1000 + i }, 'tiny')
    const prompts = w.requests.map(r => r.prompt)
    const maxTokens = Math.max(...w.requests.map(r => r.maxTokens))
    const body = JSON.stringify({ model: o.model, prompt: prompts, max_tokens: maxTokens })
    try {
      const r = await apiPost<CompletionView>(daemons[peer].info.api, '/v1/completions', body)
      const method = r.swarmtune?.method
      if (typeof method !== 'string') throw new SwarmtuneError('E_LEARN_NO_METHOD', 'the answer does not say which method served it')
      served.push({ t: Math.round((Date.now() - t0) / 100) / 10, peer, family, method, source: String(r.swarmtune?.source ?? ''), explored: r.swarmtune?.explored === true })
      if (o.explain !== false) decisions.push(await explain(daemons[peer].info.api, served.length - 1, o.model, prompts, maxTokens))
    } catch (err) {
      const code = errorCode(err)
      errors[code] = (errors[code] ?? 0) + 1
      o.progress?.(`served request ${i} on peer ${peer} failed: ${code}`)
    }
    await new Promise(resolve => setTimeout(resolve, Math.min(o.paceMs, Math.max(0, end - Date.now()))))
  }
  return { served, errors, decisions }
}

/** The daemons' own held-out curve points, every sampleMs until `end`. */
async function sampleHeldOut (daemons: DaemonProcess[], o: LearnOptions, t0: number, end: number): Promise<LearnSample[]> {
  const samples: LearnSample[] = []
  while (Date.now() < end) {
    const t = Math.round((Date.now() - t0) / 100) / 10
    for (const [i, d] of daemons.entries()) {
      const [s, e] = await Promise.all([apiGet<StatusView>(d.info.api, '/status'), apiGet<EvalView>(d.info.api, '/meta/eval')])
      samples.push(sampleOf(t, i, s, e))
    }
    await new Promise(resolve => setTimeout(resolve, Math.min(o.sampleMs, Math.max(0, end - Date.now()))))
  }
  return samples
}

export async function runLearn (o: LearnOptions): Promise<LearnReport> {
  const root = mkdtempSync(join(tmpdir(), 'swarmtune-learn-'))
  const load0 = loadavg()[0]
  const startedAt = new Date().toISOString()
  let daemons: DaemonProcess[] = []
  try {
    const table = await measureTable(root, o)
    o.progress?.(`table: ${Object.keys(table.perf).length} task types in ${table.seconds} s; single best in hindsight ${table.singleBest} (mean regret ${table.singleBestMeanRegret.toFixed(3)})`)
    const t0 = Date.now()
    daemons = await startSwarm(root, o)
    o.progress?.(`${daemons.length} daemons started in ${((Date.now() - t0) / 1000).toFixed(0)} s (model ${o.model}); serving for ${o.minutes} min`)
    const end = t0 + o.minutes * 60_000
    const [{ served, errors, decisions }, samples] = await Promise.all([serveStream(daemons, o, t0, end), sampleHeldOut(daemons, o, t0, end)])
    const curves = await Promise.all(daemons.map(async d => (await apiGet<EvalView>(d.info.api, '/meta/eval')).curve))
    const swarm = await historyOf(daemons[0].info.api)
    const sweeps = await Promise.all(daemons.map(async d => (await apiGet<{ bench?: { background?: unknown } }>(d.info.api, '/status')).bench?.background ?? null))
    const { windows, unscored } = windowsOf(served, table.perf, { windowSeconds: o.windowSeconds, baseline: table.baseline, singleBest: table.singleBest })
    for (const w of windows) o.progress?.(`window to ${w.t} s: regret ${w.regret.toFixed(3)}, baseline ${w.baselineRegret.toFixed(3)}, single-best ${w.singleBestRegret.toFixed(3)} (${w.served} served)`)
    return {
      windows,
      peers: o.peers,
      model: o.model,
      minutes: o.minutes,
      families: o.families,
      windowSeconds: o.windowSeconds,
      startedAt,
      loadavg1: { start: load0, end: loadavg()[0] },
      table,
      served,
      unscored,
      errors,
      decisions,
      swarm,
      sweeps,
      heldOut: { samples, curves }
    }
  } finally {
    await Promise.all(daemons.map(async d => { await d.stop() }))
    rmSync(root, { recursive: true, force: true })
  }
}
