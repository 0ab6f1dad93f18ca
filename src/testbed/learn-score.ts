/**
 * The pure part of the learning-curve scenario (issue #17 item 6, src/testbed/learn.ts): the
 * ground-truth table measured on this machine, the regret of a choice against it, the single
 * best method in hindsight, and the per-window means of the served choices' regret next to
 * always-baseline and always-single-best. No I/O.
 *
 * Performance is the meta-model's throughput: total tokens per second of a cell
 * (src/meta/dataset.ts), 0 for a failed cell. regret(method, task type) =
 * 1 − perf(method)/perf(best method in the table for that task type).
 */

/** task type (workload family) → method id → total tokens/s (0: failed) */
export type GroundTruth = Record<string, Record<string, number>>

/** The cells of a benchmark run (BenchSummary of POST /bench) as a table. */
export function tableOf (cells: ReadonlyArray<{ method: string, family: string, ok: boolean, totalTokensPerSecond: number }>): GroundTruth {
  const t: GroundTruth = {}
  for (const c of cells) {
    const perf = c.ok && Number.isFinite(c.totalTokensPerSecond) && c.totalTokensPerSecond > 0 ? c.totalTokensPerSecond : 0
    t[c.family] ??= {}
    t[c.family][c.method] = perf
  }
  return t
}

/** 1 − perf(method)/perf(best) on a task type; null when the table has no such cell or no ok cell for the type. */
export function regretOf (table: GroundTruth, family: string, method: string): number | null {
  const row = table[family]
  const perf = row?.[method]
  if (row == null || perf == null) return null
  const best = Math.max(...Object.values(row))
  if (!(best > 0)) return null
  return 1 - perf / best
}

/**
 * The single best method in hindsight: measured on every task type of the table, lowest mean
 * regret over the task types (each type weighs the same, as in the round-robin served stream);
 * ties go to the lexically first id so the answer is stable. Null for an empty table.
 */
export function singleBestOf (table: GroundTruth): { method: string, meanRegret: number } | null {
  const families = Object.keys(table)
  if (families.length === 0) return null
  const methods = [...new Set(families.flatMap(f => Object.keys(table[f])))].sort()
  let best: { method: string, meanRegret: number } | null = null
  for (const m of methods) {
    const rs = families.map(f => regretOf(table, f, m))
    if (rs.some(r => r == null)) continue
    const mean = (rs as number[]).reduce((a, b) => a + b, 0) / rs.length
    if (best == null || mean < best.meanRegret) best = { method: m, meanRegret: mean }
  }
  return best
}

/** One served request of the stream: when it was answered, by whom, its task type and the method the daemon says it ran. */
export interface ServedTask {
  /** seconds since the swarm's first daemon was started */
  t: number
  peer: number
  family: string
  /** the `swarmtune.method` of the OpenAI response (src/serving/openai.ts) */
  method: string
  /** the `swarmtune.source` of the response (meta | safe-default | committee | cold-start | …) */
  source: string
  explored: boolean
}

export interface LearnWindow {
  /** seconds since the swarm's first daemon was started, at the end of the window */
  t: number
  /** mean regret of the served choices scored in the window */
  regret: number
  /** mean regret had every one of those tasks run the baseline */
  baselineRegret: number
  /** mean regret had every one of those tasks run the single best method in hindsight */
  singleBestRegret: number
  /** served tasks scored in the window */
  served: number
}

export interface WindowOptions {
  windowSeconds: number
  /** the baseline's method id */
  baseline: string
  /** the single best method in hindsight (singleBestOf) */
  singleBest: string
}

/**
 * Per-window means over the served tasks that can be scored (chosen, baseline and single-best
 * all in the table for the task's type). Windows are [k·w, (k+1)·w) seconds; a window without a
 * scored task is left out. `unscored` counts the tasks left out.
 */
export function windowsOf (served: readonly ServedTask[], table: GroundTruth, o: WindowOptions): { windows: LearnWindow[], unscored: number } {
  if (!(o.windowSeconds > 0)) throw new RangeError('windowSeconds must be > 0')
  const acc = new Map<number, { r: number, b: number, s: number, n: number }>()
  let unscored = 0
  for (const x of served) {
    const r = regretOf(table, x.family, x.method)
    const b = regretOf(table, x.family, o.baseline)
    const s = regretOf(table, x.family, o.singleBest)
    if (r == null || b == null || s == null) { unscored++; continue }
    const k = Math.floor(Math.max(0, x.t) / o.windowSeconds)
    const a = acc.get(k) ?? { r: 0, b: 0, s: 0, n: 0 }
    a.r += r; a.b += b; a.s += s; a.n++
    acc.set(k, a)
  }
  const windows = [...acc.entries()].sort((x, y) => x[0] - y[0]).map(([k, a]) => ({
    t: (k + 1) * o.windowSeconds,
    regret: a.r / a.n,
    baselineRegret: a.b / a.n,
    singleBestRegret: a.s / a.n,
    served: a.n
  }))
  return { windows, unscored }
}

/** The goal on a run's windows: the last window's regret below the first's and ≤ always-single-best's. */
export function goalCheck (windows: readonly LearnWindow[]): { belowFirst: boolean, atMostSingleBest: boolean, holds: boolean } | null {
  if (windows.length < 2) return null
  const first = windows[0]
  const last = windows[windows.length - 1]
  const belowFirst = last.regret < first.regret
  const atMostSingleBest = last.regret <= last.singleBestRegret + 1e-12
  return { belowFirst, atMostSingleBest, holds: belowFirst && atMostSingleBest }
}

/**
 * The served stream's order: request i goes to peer i mod N with task type ⌊i/N⌋ mod F, so every
 * peer serves every type in turn (a plain i mod F would pin a type to a peer when F = N).
 */
export function streamSlot (i: number, peers: number, families: readonly string[]): { peer: number, family: string } {
  return { peer: i % peers, family: families[Math.floor(i / peers) % families.length] }
}

/** Why a served task's daemon chose as it did: its recommend answer for the same prompts, asked right after the task. */
export interface ServedDecision {
  /** index into `served` */
  i: number
  source: string
  reason: string | null
  /** the first three of the ranking: method and predicted speedup over the baseline (null: no prediction) */
  top: Array<{ method: string, speedup: number | null }>
}

/** One cell of the swarm's own history at the end of a run, as one daemon's store holds it. */
export interface SwarmCell {
  workload: string
  family: string
  method: string
  /** median total tokens/s of the ok records (0: none ok) */
  perf: number
  records: number
  authors: number
}

/** The swarm's history (record bodies) as cells: median throughput per (workload name, method), records and authors (pure). */
export function swarmCellsOf (bodies: ReadonlyArray<{ author: string, workload: { name: string, family: string }, method: { id: string }, result: { ok: boolean, totalTokensPerSecond: number } }>): SwarmCell[] {
  const by = new Map<string, { workload: string, family: string, method: string, ok: number[], records: number, authors: Set<string> }>()
  for (const b of bodies) {
    const k = b.workload.name + '\u0000' + b.method.id
    let c = by.get(k)
    if (c == null) by.set(k, c = { workload: b.workload.name, family: b.workload.family, method: b.method.id, ok: [], records: 0, authors: new Set() })
    c.records++
    c.authors.add(b.author)
    if (b.result.ok && b.result.totalTokensPerSecond > 0) c.ok.push(b.result.totalTokensPerSecond)
  }
  const median = (xs: number[]): number => {
    if (xs.length === 0) return 0
    const s = [...xs].sort((a, b) => a - b)
    const m = s.length >> 1
    return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
  }
  return [...by.values()]
    .map(c => ({ workload: c.workload, family: c.family, method: c.method, perf: median(c.ok), records: c.records, authors: c.authors.size }))
    .sort((a, b) => (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : b.perf - a.perf))
}
