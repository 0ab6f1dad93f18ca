/**
 * Which (method, workload) cell the background sweep measures next (pure). One scheduler for
 * every reason to measure, in this order:
 *
 * 1. first pass, baselines: the baseline of the quick cells (default model, tiny scale) on every
 *    workload never measured here (it is the reference every speedup needs);
 * 2. demand: on the workloads that served tasks were matched to recently (`demand`, most served
 *    first), every method nobody has measured there on this hardware (`measured`: all authors'
 *    records, so peers on one machine split the work), the baseline first, then by the
 *    meta-model's upper confidence bound; a method whose bound is below the best measured
 *    speedup there comes after those whose bound reaches it, but is still measured (the learn
 *    run showed the model, which the safe default did not trust, bounding the table's winner
 *    below a measured method; a demanded shape has at most one cell per catalog method). The serving decision (per-workload-best on the matched shape)
 *    can only choose well among methods measured on that shape;
 * 3. near-tie: on a demanded workload, the best measured method and every method whose mean
 *    ln(tokens/s) is within z·σ·√(1/n_best + 1/n_m) of it (σ: the noise of one record, pooled
 *    from cells measured more than once): the one of them with the fewest records is measured
 *    again, up to `maxRepeats` records. One record of a cell moves by tens of percent on a busy
 *    machine; repeating the cells that decide the choice between near-ties is where another
 *    measurement can change what is served (value of information for the decision, not per
 *    cell). Steps 2-3 come before the rest of the first pass: once tasks are served, measuring
 *    their shapes is this peer's first contribution too;
 * 4. the rest of the first pass: the other quick methods in the configured order, so a fresh
 *    peer publishes records within minutes;
 * 5. spot checks: other authors' claims on this hardware that the trust service wants
 *    re-measured (src/trust/spotcheck.ts), best first;
 * 6. the baseline on any workload not measured here yet (same reason as in 1);
 * 7. an untried method: one with no own record on any workload, measured once on the workload
 *    measured most (an arm never tried has unbounded uncertainty, as in UCB; a method never
 *    measured can never be chosen, and the learner cannot rank it);
 * 8. value of information, when the meta-model predicts the workload: for each method the upper
 *    confidence bound of its predicted ln(speedup) over the current choice's predicted mean,
 *    `max(0, mean + c·std − best)`, divided by 1 + own records of the cell (a cell measured
 *    often has told what it can); the highest positive value wins;
 * 9. coverage (cold start, or when no prediction exceeds the current choice): the cell with the
 *    fewest own records, ties in catalog order.
 * Cells that failed recently are skipped until their back-off ends (`blocked`). Where several
 * cells are equally due (steps 2 and 3), `tieBreak` (a number in [0, 1) fixed per peer) picks
 * among them, so peers on one machine that see the same history do not all measure the same cell.
 */
import { matchShape, type KnownShape } from '../meta/shape-match.js'

export interface ScheduleCell {
  method: string
  workload: string
  /** part of the quick first pass */
  firstPass?: boolean
}

export interface CellPrediction { mean: number, std: number }

/** The swarm's records of a cell on this hardware (all authors): mean and spread of ln(total tokens/s) of the ok ones. */
export interface MeasuredCell {
  /** ok records */
  n: number
  /** mean ln(tokens/s) over the ok records (undefined when none is ok) */
  mean?: number
  /** sample standard deviation of ln(tokens/s) (n ≥ 2) */
  sd?: number
  /** records that failed */
  failed?: number
}

export interface ScheduleInput {
  /** every cell of the sweep, in catalog order */
  cells: readonly ScheduleCell[]
  /** own records per cellKey */
  counts: ReadonlyMap<string, number>
  /** cells in back-off after a failure */
  blocked?: (key: string) => boolean
  /** trust spot checks, best first */
  spotChecks?: ReadonlyArray<{ method: string, workload: string }>
  /** the meta-model's predicted ln(speedup) per method of a workload, or undefined when it cannot predict */
  predict?: (workload: string, methods: string[]) => ReadonlyMap<string, CellPrediction> | undefined
  /** the baseline method id (default 'baseline') */
  baseline?: string
  /** exploration weight of the spread (default 1) */
  c?: number
  /** the swarm's measurements on this hardware per cellKey (all authors; steps 2 and 3) */
  measured?: ReadonlyMap<string, MeasuredCell>
  /** recent serving demand per workload name (served tasks matched to it); workloads absent have none */
  demand?: ReadonlyMap<string, number>
  /** noise of one record's ln(tokens/s) (default: pooled from `measured`, else DEFAULT_NOISE) */
  noise?: number
  /** z of the near-tie test (default NEAR_TIE_Z) */
  z?: number
  /** the near-tie step stops adding records to a cell at this many (default NEAR_TIE_MAX_RECORDS) */
  maxRepeats?: number
  /** in [0, 1), fixed per peer: which of several equally due cells this peer takes (default 0) */
  tieBreak?: number
}

/** Noise of one record's ln(tokens/s) before any cell was measured twice: "tens of percent" on a busy machine. */
export const DEFAULT_NOISE = 0.25
/** One-sided 95 %: a method is a near-tie of the best unless its deficit is clear at this z. */
export const NEAR_TIE_Z = 1.64
/** Records per cell at most from the near-tie step (σ/√6 ≈ 0.4 σ: finer differences are not worth the time). */
export const NEAR_TIE_MAX_RECORDS = 6

export type ScheduleReason = 'first-pass' | 'spot-check' | 'demand' | 'near-tie' | 'baseline' | 'untried-method' | 'value' | 'coverage'

export interface ScheduledCell { cell: ScheduleCell, reason: ScheduleReason, value?: number }

export const cellKey = (methodId: string, workloadName: string): string => `${methodId}\u0000${workloadName}`

export function scheduleNext (input: ScheduleInput): ScheduledCell | undefined {
  const baseline = input.baseline ?? 'baseline'
  const count = (c: ScheduleCell): number => input.counts.get(cellKey(c.method, c.workload)) ?? 0
  const open = input.cells.filter(c => input.blocked?.(cellKey(c.method, c.workload)) !== true)
  const unmeasured = open.filter(c => count(c) === 0)

  const quick = unmeasured.filter(c => c.firstPass === true)
  const quickBase = quick.find(c => c.method === baseline)
  if (quickBase != null) return { cell: quickBase, reason: 'first-pass' }

  // served shapes come before the rest of the first pass: measuring them is this peer's
  // contribution too, and what the served choices are made from
  const demanded = demandPick(open, count, input, baseline)
  if (demanded != null) return demanded

  if (quick.length > 0) return { cell: quick[0], reason: 'first-pass' }

  for (const s of input.spotChecks ?? []) {
    const c = open.find(x => x.method === s.method && x.workload === s.workload)
    if (c != null) return { cell: c, reason: 'spot-check' }
  }

  const base = unmeasured.find(c => c.method === baseline)
  if (base != null) return { cell: base, reason: 'baseline' }

  // an arm never tried has unbounded uncertainty (as in UCB): every method is measured once,
  // on the workload measured most, before value picks, or the selector can never choose it
  const untried = untriedMethodPick(open, unmeasured, count)
  if (untried != null) return { cell: untried, reason: 'untried-method' }

  const byValue = valuePick(open, count, input)
  if (byValue != null) return byValue

  let best: ScheduleCell | undefined
  let bestCount = Infinity
  for (const c of open) {
    const n = count(c)
    if (n < bestCount) { best = c; bestCount = n }
  }
  return best != null ? { cell: best, reason: 'coverage' } : undefined
}

/** A cell of a method with no record on any workload, on the workload with the most records (ties: catalog order). */
function untriedMethodPick (open: readonly ScheduleCell[], unmeasured: readonly ScheduleCell[], count: (c: ScheduleCell) => number): ScheduleCell | undefined {
  const tried = new Set<string>()
  const perWorkload = new Map<string, number>()
  for (const c of open) {
    const n = count(c)
    if (n > 0) tried.add(c.method)
    perWorkload.set(c.workload, (perWorkload.get(c.workload) ?? 0) + n)
  }
  let pick: ScheduleCell | undefined
  for (const c of unmeasured) {
    if (tried.has(c.method)) continue
    if (pick == null || (perWorkload.get(c.workload) ?? 0) > (perWorkload.get(pick.workload) ?? 0)) pick = c
  }
  return pick
}

/** Step 5: the cell whose measurement is most likely to change a choice. */
function valuePick (open: readonly ScheduleCell[], count: (c: ScheduleCell) => number, input: ScheduleInput): ScheduledCell | undefined {
  if (input.predict == null) return undefined
  const c = input.c ?? 1
  const byWorkload = new Map<string, ScheduleCell[]>()
  for (const cell of open) {
    let list = byWorkload.get(cell.workload)
    if (list == null) byWorkload.set(cell.workload, list = [])
    list.push(cell)
  }
  let pick: ScheduledCell | undefined
  for (const [workload, cells] of byWorkload) {
    const preds = input.predict(workload, cells.map(x => x.method))
    if (preds == null) continue
    let best = -Infinity
    for (const p of preds.values()) if (Number.isFinite(p.mean) && p.mean > best) best = p.mean
    if (!Number.isFinite(best)) continue
    for (const cell of cells) {
      const p = preds.get(cell.method)
      if (p == null || !Number.isFinite(p.mean)) continue
      const std = Number.isFinite(p.std) ? p.std : 0
      const value = Math.max(0, p.mean + c * std - best) / (1 + count(cell))
      // strictly greater: ties keep the earlier cell (catalog order), so the choice is deterministic
      if (value > 0 && (pick == null || value > (pick.value ?? 0))) pick = { cell, reason: 'value', value }
    }
  }
  return pick
}

/** The noise of one record: the pooled within-cell standard deviation of cells with ≥ 2 ok records, else DEFAULT_NOISE. */
export function pooledNoise (measured: ReadonlyMap<string, MeasuredCell> | undefined): number {
  let ss = 0
  let df = 0
  for (const m of measured?.values() ?? []) {
    if (m.n >= 2 && m.sd != null && Number.isFinite(m.sd)) { ss += (m.n - 1) * m.sd ** 2; df += m.n - 1 }
  }
  return df > 0 ? Math.sqrt(ss / df) : DEFAULT_NOISE
}

/** The cell at `tieBreak` among equally due ones. */
function spread<T> (due: readonly T[], tieBreak: number | undefined): T | undefined {
  if (due.length === 0) return undefined
  const f = tieBreak != null && Number.isFinite(tieBreak) ? Math.min(Math.max(tieBreak, 0), 0.999999) : 0
  return due[Math.floor(f * due.length)]
}

/** The demanded workloads, most demand first (ties: name). */
function demandOrder (demand: ReadonlyMap<string, number> | undefined): string[] {
  return [...demand ?? []].filter(([, d]) => d > 0).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w)
}

/**
 * Steps 2 and 3 (see the header): on the demanded workloads, first the methods nobody has
 * measured there, then the near-ties of the best measured method.
 */
function demandPick (open: readonly ScheduleCell[], count: (c: ScheduleCell) => number, input: ScheduleInput, baseline: string): ScheduledCell | undefined {
  const workloads = demandOrder(input.demand)
  if (workloads.length === 0) return undefined
  const measured = (c: ScheduleCell): MeasuredCell | undefined => input.measured?.get(cellKey(c.method, c.workload))
  const n = (c: ScheduleCell): number => Math.max(count(c), (measured(c)?.n ?? 0) + (measured(c)?.failed ?? 0))
  for (const w of workloads) {
    const cells = open.filter(c => c.workload === w)
    const unmeasured = cells.filter(c => n(c) === 0)
    if (unmeasured.length === 0) continue
    const base = unmeasured.find(c => c.method === baseline)
    if (base != null) return { cell: base, reason: 'demand' }
    const due = worthMeasuring(unmeasured, cells, measured, input, baseline)
    const pick = spread(due, input.tieBreak) ?? spread(unmeasured.filter(c => !due.includes(c)), input.tieBreak)
    if (pick != null) return { cell: pick, reason: 'demand' }
  }
  return nearTiePick(open, workloads, measured, input)
}

/**
 * Unmeasured cells of one workload worth a measurement, best bound first: all of them without a
 * prediction; with one, those whose upper bound of predicted ln(speedup) reaches the best
 * measured ln(speedup) over the baseline there.
 */
function worthMeasuring (unmeasured: readonly ScheduleCell[], cells: readonly ScheduleCell[], measured: (c: ScheduleCell) => MeasuredCell | undefined, input: ScheduleInput, baseline: string): ScheduleCell[] {
  const w = unmeasured[0].workload
  const preds = input.predict?.(w, cells.map(c => c.method))
  const baseMean = cells.map(c => c.method === baseline ? measured(c)?.mean : undefined).find(x => x != null)
  if (preds == null || baseMean == null) return [...unmeasured]
  let bestSpeedup = 0
  for (const c of cells) {
    const m = measured(c)?.mean
    if (m != null && Number.isFinite(m)) bestSpeedup = Math.max(bestSpeedup, m - baseMean)
  }
  const c = input.c ?? 1
  const ucb = (x: ScheduleCell): number => {
    const p = preds.get(x.method)
    // a method the model cannot place has unbounded uncertainty
    return p == null || !Number.isFinite(p.mean) ? Infinity : p.mean + c * (Number.isFinite(p.std) ? p.std : 0)
  }
  return unmeasured.filter(x => ucb(x) >= bestSpeedup).sort((a, b) => ucb(b) - ucb(a))
}

/** Step 3: over the demanded workloads, the near-tie cell with the fewest records (ties: demand order, then catalog order). */
function nearTiePick (open: readonly ScheduleCell[], workloads: readonly string[], measured: (c: ScheduleCell) => MeasuredCell | undefined, input: ScheduleInput): ScheduledCell | undefined {
  const sigma = input.noise ?? pooledNoise(input.measured)
  const z = input.z ?? NEAR_TIE_Z
  const max = input.maxRepeats ?? NEAR_TIE_MAX_RECORDS
  let due: Array<{ cell: ScheduleCell, value: number }> = []
  let dueN = Infinity
  for (const w of workloads) {
    const ok = open.filter(c => c.workload === w).map(c => ({ cell: c, m: measured(c) }))
      .filter((x): x is { cell: ScheduleCell, m: MeasuredCell & { mean: number } } => x.m != null && x.m.n > 0 && x.m.mean != null && Number.isFinite(x.m.mean))
    if (ok.length < 2) continue
    const best = ok.reduce((a, b) => (b.m.mean > a.m.mean ? b : a))
    const ties = ok.filter(x => x === best || best.m.mean - x.m.mean < z * sigma * Math.sqrt(1 / best.m.n + 1 / x.m.n))
    if (ties.length < 2) continue
    for (const x of ties) {
      if (x.m.n >= max) continue
      // value: the deficit in units of its standard error (0 for the best); smaller is closer
      const value = x === best ? 0 : (best.m.mean - x.m.mean) / (sigma * Math.sqrt(1 / best.m.n + 1 / x.m.n))
      if (x.m.n < dueN) { due = [{ cell: x.cell, value }]; dueN = x.m.n } else if (x.m.n === dueN) due.push({ cell: x.cell, value })
    }
  }
  const pick = spread(due, input.tieBreak)
  return pick != null ? { cell: pick.cell, reason: 'near-tie', value: pick.value } : undefined
}

/**
 * Serving demand per sweep workload (pure): each recently served task's features matched to the
 * nearest of the sweep's workloads (src/meta/shape-match.ts, the bound the serving decision uses
 * too); a task that matches none adds nothing.
 */
export function demandOf (served: ReadonlyArray<Readonly<Record<string, number>>>, workloads: ReadonlyMap<string, Readonly<Record<string, number>>>): Map<string, number> {
  const shapes: KnownShape[] = [...workloads].map(([workload, features]) => ({ model: '', workload, features: { ...features } }))
  const demand = new Map<string, number>()
  for (const f of served) {
    const m = matchShape(shapes, '', f)
    if (m != null) demand.set(m.workload, (demand.get(m.workload) ?? 0) + 1)
  }
  return demand
}

/** ln(tokens/s) statistics of a cell's ok records (MeasuredCell), from its throughputs (failed: ≤ 0 or not finite). */
export function measuredCellOf (throughputs: readonly number[]): MeasuredCell {
  const ok = throughputs.filter(x => Number.isFinite(x) && x > 0).map(x => Math.log(x))
  const failed = throughputs.length - ok.length
  if (ok.length === 0) return { n: 0, failed }
  const mean = ok.reduce((a, b) => a + b, 0) / ok.length
  const sd = ok.length >= 2 ? Math.sqrt(ok.reduce((a, b) => a + (b - mean) ** 2, 0) / (ok.length - 1)) : undefined
  return { n: ok.length, mean, ...(sd != null ? { sd } : {}), ...(failed > 0 ? { failed } : {}) }
}

/** A peer's fixed tie-break in [0, 1) from its id (FNV-1a), so peers of one machine spread over equally due cells. */
export function tieBreakOf (id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0
  return h / 2 ** 32
}

/** Back-off after the n-th consecutive failure of a cell: base · 2^(n-1), capped at `maxMs`. */
export function failureBackoffMs (failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 0) return 0
  return Math.min(maxMs, baseMs * 2 ** Math.min(30, failures - 1))
}

/** A default model file at least this large gets the quick first pass on a small model first. */
export const QUICK_FIRST_PASS_MIN_BYTES = 64 * 1024 * 1024

/**
 * Issue #17: whether the sweep starts with a first pass on `quickModel` (pure): when one is
 * configured, differs from the default model, and the default model must still be generated or
 * downloaded (no file yet) or is large. Once the quick cells are measured, the sweep skips them
 * by its own counts, so a restart costs nothing.
 */
export function needsQuickFirstPass (o: { defaultModel: string, quickModel: string | null | undefined, file: { exists: boolean, bytes: number } | undefined }): boolean {
  if (o.quickModel == null || o.quickModel === o.defaultModel || o.file == null) return false
  return !o.file.exists || o.file.bytes >= QUICK_FIRST_PASS_MIN_BYTES
}
