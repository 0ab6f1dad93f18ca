import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { SwarmtuneError, errorCode, errorMessage } from '../util/errors.js'
import { packageRoot } from '../util/paths.js'
import { groupTasks, type Dataset, type HistoryBody, type Split } from './dataset.js'
import type { EvalRow } from './eval.js'

/**
 * Choice quality over time, measured in the running daemon (issue #17 item 6, issue #20's
 * "how good the choices are"): after a snapshot training, at most once per
 * `meta.evalIntervalMs`, the node scores its selectors on its own history with grouped held-out
 * folds (eval.ts, in a worker thread, bounded by EVAL_TIMEOUT_MS) and appends a point to its
 * learning curve. The curve (last MAX_POINTS points) and the latest table are kept in the store's
 * meta keys, so a restart keeps them. The pure parts (split choice, scorable tasks, points) are
 * exported for tests; `createLearningCurve` is the part with I/O (store, worker).
 */
export const CURVE_KEY = 'meta:learning-curve'
/** points kept (the oldest go first) */
export const MAX_POINTS = 200
/** fewer scorable tasks than this: no evaluation (a held-out fold of 1 task says nothing) */
export const MIN_EVAL_TASKS = 4
/** one evaluation may take this long before its worker is stopped (E_EVAL_TIMEOUT) */
export const EVAL_TIMEOUT_MS = 120_000
/** the fixed rules a curve point keeps next to the daemon's default selector */
export const CURVE_SELECTORS = ['single-best', 'per-workload-best'] as const

/** The latest evaluation table (GET /meta/eval `latest`). */
export interface EvalSummary { split: Split, folds: number, tasks: number, rows: EvalRow[], grouping: string }

export interface CurveRow { selector: string, top1: number, regret: number, default?: true }

export interface CurvePoint {
  /** ms since the epoch */
  at: number
  records: number
  authors: number
  tasks: number
  split: Split
  rows: CurveRow[]
}

export interface LearningCurveState { latest: EvalSummary | null, curve: CurvePoint[] }

export interface EvalRequest { bodies: HistoryBody[], nTrees: number, seed: number }
export type EvalReply = { ok: true, result: EvalSummary } | { ok: false, code: string, message: string }

/** Tasks eval would score: an ok measurement and at least two methods to choose between. */
export function scorableTasks (ds: Dataset): number {
  return ds.tasks.filter(t => t.reference != null && t.cells.size >= 2).length
}

/**
 * The held-out grouping the daemon evaluates on: by host when the history spans two or more
 * hosts (the question a new peer asks), else by workload (a swarm on one machine), else random.
 */
export function evalSplitOf (ds: Dataset): Split {
  const tasks = ds.tasks.filter(t => t.reference != null && t.cells.size >= 2)
  for (const split of ['hardware', 'workload'] as const) if (groupTasks(tasks, split).size >= 2) return split
  return 'random'
}

/** The row of the daemon's default selector (flagged `default: true` by eval.ts), if any. */
export function defaultRow<T extends { default?: true }> (rows: readonly T[]): T | undefined {
  return rows.find(r => r.default === true)
}

/** A curve point from an evaluation: the fixed rules, the default selector and any safe-default row. */
export function curvePoint (r: EvalSummary, at: number, records: number, authors: number): CurvePoint {
  const keep = r.rows.filter(x => x.default === true || (CURVE_SELECTORS as readonly string[]).includes(x.selector) || x.selector.endsWith('safe-default'))
  return {
    at,
    records,
    authors,
    tasks: r.tasks,
    split: r.split,
    rows: keep.map(x => ({ selector: x.selector, top1: x.top1, regret: x.regret, ...(x.default === true ? { default: true as const } : {}) }))
  }
}

/** The curve with `p` appended, at most `max` points. */
export function appendPoint (curve: readonly CurvePoint[], p: CurvePoint, max = MAX_POINTS): CurvePoint[] {
  const next = [...curve, p]
  return next.length > max ? next.slice(next.length - max) : next
}

/** A stored state as read back: anything malformed is dropped, not trusted. */
export function restoreState (saved: unknown): LearningCurveState {
  const s = saved as Partial<LearningCurveState> | null | undefined
  const curve = Array.isArray(s?.curve) ? s.curve.filter(p => p != null && typeof p.at === 'number' && Array.isArray(p.rows)) : []
  const latest = s?.latest != null && Array.isArray(s.latest.rows) ? s.latest : null
  return { latest, curve: curve.slice(-MAX_POINTS) }
}

function workerPath (): string {
  const here = fileURLToPath(new URL('./eval-worker.js', import.meta.url))
  // under vitest this module runs from src/ (TypeScript): use the compiled worker
  return existsSync(here) ? here : join(packageRoot(), 'dist', 'src', 'meta', 'eval-worker.js')
}

/** One evaluation in a worker thread, stopped after `timeoutMs`. */
export async function evaluateInWorker (req: EvalRequest, timeoutMs = EVAL_TIMEOUT_MS, signal?: AbortSignal): Promise<EvalSummary> {
  return await new Promise((resolve, reject) => {
    const w = new Worker(workerPath())
    signal?.addEventListener('abort', () => { void w.terminate() }, { once: true })
    let settled = false
    const done = (fn: () => void): void => { if (!settled) { settled = true; clearTimeout(timer); fn() } }
    const timer = setTimeout(() => {
      done(() => { reject(new SwarmtuneError('E_EVAL_TIMEOUT', `evaluation took over ${timeoutMs} ms`)) })
      void w.terminate()
    }, timeoutMs)
    w.once('message', (reply: EvalReply) => {
      done(() => { if (reply.ok) resolve(reply.result); else reject(new SwarmtuneError(reply.code, reply.message)) })
      void w.terminate()
    })
    w.once('error', err => { done(() => { reject(err) }) })
    w.once('exit', code => { done(() => { reject(new SwarmtuneError('E_EVAL_WORKER', `evaluation worker exited with code ${code}`)) }) })
    w.postMessage(req)
  })
}

export interface LearningCurveInit {
  /** least ms between two evaluations; 0 = never evaluate */
  intervalMs: number
  nTrees: number
  timeoutMs?: number
}

export interface LearningCurveComponents {
  store: { getMeta: <T>(key: string) => Promise<T | undefined>, putMeta: (key: string, value: unknown) => Promise<void> }
  /** the node's history now: record bodies and the number of distinct authors */
  history: () => Promise<{ bodies: HistoryBody[], authors: number }>
  /** turns the history into a dataset (meta/dataset.ts buildDataset) */
  dataset: (bodies: HistoryBody[]) => Dataset
  /** defaults to evaluateInWorker */
  evaluate?: (req: EvalRequest, timeoutMs: number, signal?: AbortSignal) => Promise<EvalSummary>
  now?: () => number
  onError?: (err: { code: string, message: string }) => void
  onPoint?: (p: CurvePoint) => void
}

export interface LearningCurve {
  load: () => Promise<void>
  /** a snapshot was trained: evaluate now if due, else once the interval has passed */
  trained: () => void
  /** evaluate now (unless one runs or the history is too small); resolves with the new point or null */
  evaluateNow: () => Promise<CurvePoint | null>
  state: () => LearningCurveState
  stop: () => void
}

/** The in-daemon evaluation: rate-limited, one at a time, skipped when nothing new arrived. */
export function createLearningCurve (init: LearningCurveInit, c: LearningCurveComponents): LearningCurve {
  const now = c.now ?? Date.now
  const run = c.evaluate ?? evaluateInWorker
  let state: LearningCurveState = { latest: null, curve: [] }
  let lastAt = 0
  let lastRecords = -1
  let running: Promise<CurvePoint | null> | null = null
  let deferred: NodeJS.Timeout | undefined
  let stopped = false
  const abort = new AbortController()

  async function once (): Promise<CurvePoint | null> {
    const { bodies, authors } = await c.history()
    if (bodies.length === lastRecords) return null
    const ds = c.dataset(bodies)
    if (scorableTasks(ds) < MIN_EVAL_TASKS) return null
    lastAt = now()
    lastRecords = bodies.length
    const result = await run({ bodies, nTrees: init.nTrees, seed: 1 }, init.timeoutMs ?? EVAL_TIMEOUT_MS, abort.signal)
    if (stopped) return null
    const p = curvePoint(result, now(), bodies.length, authors)
    state = { latest: result, curve: appendPoint(state.curve, p) }
    await c.store.putMeta(CURVE_KEY, state)
    c.onPoint?.(p)
    return p
  }

  async function evaluateNow (): Promise<CurvePoint | null> {
    if (running != null) return await running
    running = once().finally(() => { running = null })
    return await running
  }

  function safely (): void {
    evaluateNow().catch(err => { c.onError?.({ code: errorCode(err), message: errorMessage(err) }) })
  }

  return {
    async load () { state = restoreState(await c.store.getMeta(CURVE_KEY)); lastAt = state.curve.at(-1)?.at ?? 0 },
    trained () {
      if (init.intervalMs <= 0 || stopped || deferred != null) return
      const wait = lastAt + init.intervalMs - now()
      if (wait <= 0) { safely(); return }
      deferred = setTimeout(() => { deferred = undefined; if (!stopped) safely() }, wait)
      deferred.unref()
    },
    evaluateNow,
    state: () => state,
    stop () { stopped = true; abort.abort(); if (deferred != null) clearTimeout(deferred) }
  }
}
