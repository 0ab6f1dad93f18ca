import { WORKLOAD_FEATURES } from './features.js'

/**
 * Matching a query's workload to a workload shape of the history (issue 17: per-workload-best in
 * the daemon). A served batch or a recommend request carries workload features computed from its
 * tokens, not the name of a benchmark workload; the per-workload-best rule needs that name. The
 * query takes the nearest shape of the same (logical) model, when it is within the bound. Pure.
 *
 * Distance: the largest per-feature difference over the workload features both sides have
 * (features.ts WORKLOAD_FEATURES), each on its own scale:
 * - ratios in [0, 1] (prefix shares, n-gram overlap): |a − b| / RATIO_STEP;
 * - counts and lengths (tokens, requests, concurrency, context depth): |ln((1 + a)/(1 + b))| / ln 2.
 * A distance ≤ 1 (SHAPE_MATCH_BOUND) means: no length or count differs by more than a factor of 2
 * and no ratio by more than 0.25. Why these: which method wins is set by the balance of prefill
 * and decode and by how much of the prompt is reusable; within a factor of 2 of every length that
 * balance moves little, while across several factors (a 40-token chat turn vs a 2,000-token
 * document) the winner does change, and the learner, not a fixed rule of another shape, should
 * answer. The bound is a property of the features, not fitted to any data set. The maximum, not
 * a sum, so a query far off in one feature never matches however close the others are.
 */
export const SHAPE_MATCH_BOUND = 1
/** a ratio feature's difference that counts as distance 1 */
export const RATIO_STEP = 0.25

const RATIO_KEYS = new Set(['sharedPrefixRatio', 'reusablePrefixRatio', 'ngramOverlap'])
const KEYS = WORKLOAD_FEATURES.map(f => f.key)

/** A workload shape of the history: the model it ran on, its name, its features. */
export interface KnownShape {
  /** the logical model id (dataset.ts logicalModelId) */
  model: string
  workload: string
  features: Record<string, number>
  /** methods measured on the shape (the most of any machine's task); absent in older snapshots */
  methods?: number
}

export interface ShapeMatch {
  workload: string
  distance: number
}

function usable (v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0
}

/** Distance of two workloads' features (see above); undefined when they share no feature. */
export function shapeDistance (a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): number | undefined {
  let d = -1
  for (const k of KEYS) {
    const x = a[k]
    const y = b[k]
    if (!usable(x) || !usable(y)) continue
    const one = RATIO_KEYS.has(k) ? Math.abs(x - y) / RATIO_STEP : Math.abs(Math.log((1 + x) / (1 + y))) / Math.LN2
    if (one > d) d = one
  }
  return d < 0 ? undefined : d
}

/** Methods a shape needs measured to compare anything (a rule on one method repeats it). */
export const COMPARATIVE_METHODS = 2

/**
 * The known shape of `model` for `features`, among the shapes within `bound`:
 * 1. a shape with at least COMPARATIVE_METHODS methods measured wins over one with fewer: a
 *    served batch's own shape (0 methods, knownShapes) or a shape measured on one method compares
 *    nothing, and choosing there would repeat past choices (issue #17, the learn scenario);
 * 2. among comparative shapes, the nearest; among the others, the most methods, then the nearest;
 * 3. then the smaller workload name (deterministic on every peer).
 * Nearest before most-measured among comparative shapes: two benchmark shapes within the bound
 * can still have different winners (learn scenario, 2026-12-07 19:43 UTC: classify at 6 requests
 * × 10 tokens and at 8 × 16 had different best methods, and "most methods" sent a task of the
 * first shape to the second whenever the second had one more method measured). Pairs the
 * nearest shape never measured together come from the machine's wider evidence (safe-default.ts,
 * live-evidence.ts), so a young shape still ranks every method.
 */
export function matchShape (shapes: readonly KnownShape[], model: string, features: Readonly<Record<string, number>>, bound = SHAPE_MATCH_BOUND): ShapeMatch | undefined {
  let best: (ShapeMatch & { methods: number }) | undefined
  for (const s of shapes) {
    if (s.model !== model) continue
    const d = shapeDistance(features, s.features)
    if (d == null || d > bound) continue
    const m = { workload: s.workload, distance: d, methods: s.methods ?? 0 }
    if (best == null || betterShape(m, best)) best = m
  }
  return best != null ? { workload: best.workload, distance: best.distance } : undefined
}

function betterShape (a: ShapeMatch & { methods: number }, b: ShapeMatch & { methods: number }): boolean {
  const ca = a.methods >= COMPARATIVE_METHODS
  const cb = b.methods >= COMPARATIVE_METHODS
  if (ca !== cb) return ca
  if (!ca && a.methods !== b.methods) return a.methods > b.methods
  if (a.distance !== b.distance) return a.distance < b.distance
  return a.workload < b.workload
}

/**
 * The history's shapes, one per (model, workload name): features from the first task that has
 * it, methods the most of any of its tasks. A served batch's shape (family `serving`) counts 0
 * methods: its methods ran on different prompts, one pass each, as they happened to be chosen,
 * so it compares nothing; a benchmark shape within the bound is the better evidence.
 */
export function knownShapes (tasks: ReadonlyArray<{ modelId: string, workload: string, family?: string, info: { workload: { features?: Record<string, number> } }, cells?: { size: number } }>): KnownShape[] {
  const out = new Map<string, KnownShape>()
  for (const t of tasks) {
    const k = t.modelId + '|' + t.workload
    const s = out.get(k)
    const methods = t.family === 'serving' ? 0 : t.cells?.size ?? 0
    if (s == null) out.set(k, { model: t.modelId, workload: t.workload, features: { ...(t.info.workload.features ?? {}) }, methods })
    else s.methods = Math.max(s.methods ?? 0, methods)
  }
  return [...out.values()].sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0))
}

/** Whether a snapshot's shape list is well formed (it comes from disk). */
export function validShapes (v: unknown): v is KnownShape[] {
  return Array.isArray(v) && v.every(s => s != null && typeof s === 'object' && typeof s.model === 'string' && typeof s.workload === 'string' &&
    (s.methods === undefined || (typeof s.methods === 'number' && Number.isFinite(s.methods))) &&
    s.features != null && typeof s.features === 'object' && Object.values(s.features as Record<string, unknown>).every(x => typeof x === 'number'))
}
