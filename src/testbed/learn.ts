import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiGet } from '../node/api-client.js'
import { loopbackAddr, spawnDaemon, type DaemonProcess } from './processes.js'

/**
 * The learning-curve scenario (`swarmtune testbed --scenario learn`, issue #17 item 6, as the
 * daemons measure it): N fresh daemons started through the CLI, the background sweep on (tiny
 * model, a larger share of wall time so the run fits minutes), each one evaluating its own
 * selectors after its trainings (meta.evalIntervalMs). Every `sampleMs` it reads each daemon's
 * /status and /meta/eval and keeps (time, peer, records, authors, default-row regret,
 * single-best regret) of the daemon's latest curve point.
 */
export interface LearnOptions {
  peers: number
  minutes: number
  /** engine.defaultModel of the daemons (the sweep's first pass runs on it) */
  model: string
  sampleMs: number
  /** meta.evalIntervalMs of the daemons */
  evalIntervalMs: number
  /** bench.background.share of the daemons after the first pass */
  share: number
  progress?: (line: string) => void
}

export const DEFAULT_LEARN_OPTIONS: Omit<LearnOptions, 'progress'> = { peers: 3, minutes: 8, model: 'tiny', sampleMs: 10_000, evalIntervalMs: 30_000, share: 0.5 }

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

export interface LearnReport {
  peers: number
  model: string
  minutes: number
  startedAt: string
  loadavg1: { start: number, end: number }
  samples: LearnSample[]
  /** each daemon's whole curve at the end (GET /meta/eval `curve`) */
  curves: CurvePointView[][]
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

export async function runLearn (o: LearnOptions): Promise<LearnReport> {
  const root = mkdtempSync(join(tmpdir(), 'swarmtune-learn-'))
  const load0 = loadavg()[0]
  const t0 = Date.now()
  const startedAt = new Date(t0).toISOString()
  const samples: LearnSample[] = []
  let daemons: DaemonProcess[] = []
  try {
    daemons = await startSwarm(root, o)
    o.progress?.(`${daemons.length} daemons started in ${((Date.now() - t0) / 1000).toFixed(0)} s (model ${o.model}); sampling every ${o.sampleMs / 1000} s for ${o.minutes} min`)
    const end = t0 + o.minutes * 60_000
    while (Date.now() < end) {
      const t = Math.round((Date.now() - t0) / 100) / 10
      for (const [i, d] of daemons.entries()) {
        const [s, e] = await Promise.all([apiGet<StatusView>(d.info.api, '/status'), apiGet<EvalView>(d.info.api, '/meta/eval')])
        const row = sampleOf(t, i, s, e)
        samples.push(row)
        o.progress?.(`${t.toFixed(0)} s peer ${i}: ${row.records} records of ${row.authors} authors; default regret ${row.defaultRegret?.toFixed(3) ?? '-'}, single-best ${row.singleBestRegret?.toFixed(3) ?? '-'} (${row.tasks ?? 0} tasks)`)
      }
      await new Promise(resolve => setTimeout(resolve, Math.min(o.sampleMs, Math.max(0, end - Date.now()))))
    }
    const curves = await Promise.all(daemons.map(async d => (await apiGet<EvalView>(d.info.api, '/meta/eval')).curve))
    return { peers: o.peers, model: o.model, minutes: o.minutes, startedAt, loadavg1: { start: load0, end: loadavg()[0] }, samples, curves }
  } finally {
    await Promise.all(daemons.map(async d => { await d.stop() }))
    rmSync(root, { recursive: true, force: true })
  }
}
