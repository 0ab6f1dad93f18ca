/**
 * Which (method, workload) cell the background sweep measures next (pure). One scheduler for
 * every reason to measure, in this order:
 *
 * 1. first pass: the quick cells (default model, tiny scale, a few methods) never measured here,
 *    the baseline on every workload first (it is the reference every speedup needs), then the
 *    other quick methods in the configured order; a fresh peer publishes these within minutes;
 * 2. spot checks: other authors' claims on this hardware that the trust service wants
 *    re-measured (src/trust/spotcheck.ts), best first;
 * 3. the baseline on any workload not measured here yet (same reason as in 1);
 * 4. an untried method: one with no own record on any workload, measured once on the workload
 *    measured most (an arm never tried has unbounded uncertainty, as in UCB; a method never
 *    measured can never be chosen, and the learner cannot rank it);
 * 5. value of information, when the meta-model predicts the workload: for each method the upper
 *    confidence bound of its predicted ln(speedup) over the current choice's predicted mean,
 *    `max(0, mean + c·std − best)`, divided by 1 + own records of the cell (a cell measured
 *    often has told what it can); the highest positive value wins;
 * 6. coverage (cold start, or when no prediction exceeds the current choice): the cell with the
 *    fewest own records, ties in catalog order.
 * Cells that failed recently are skipped until their back-off ends (`blocked`).
 */
export interface ScheduleCell {
  method: string
  workload: string
  /** part of the quick first pass */
  firstPass?: boolean
}

export interface CellPrediction { mean: number, std: number }

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
}

export type ScheduleReason = 'first-pass' | 'spot-check' | 'baseline' | 'untried-method' | 'value' | 'coverage'

export interface ScheduledCell { cell: ScheduleCell, reason: ScheduleReason, value?: number }

export const cellKey = (methodId: string, workloadName: string): string => `${methodId}\u0000${workloadName}`

export function scheduleNext (input: ScheduleInput): ScheduledCell | undefined {
  const baseline = input.baseline ?? 'baseline'
  const count = (c: ScheduleCell): number => input.counts.get(cellKey(c.method, c.workload)) ?? 0
  const open = input.cells.filter(c => input.blocked?.(cellKey(c.method, c.workload)) !== true)
  const unmeasured = open.filter(c => count(c) === 0)

  const quick = unmeasured.filter(c => c.firstPass === true)
  const quickPick = quick.find(c => c.method === baseline) ?? quick[0]
  if (quickPick != null) return { cell: quickPick, reason: 'first-pass' }

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
