import type { ForestOptions, ForestPrediction, LearnerBackend, RegressionForest } from './learner.js'
import { featureVector } from './features.js'
import type { Task } from './dataset.js'
import { logPerf, Pairwise, perfOf, type PairwiseJSON, type Predictor } from './safe-default.js'

/**
 * The daemon's learner (issues 16 and 17): a forest on a pairwise prior. One implementation,
 * shared by the meta service (selector.ts trains it into the snapshot) and `eval` (its rows).
 *
 * score(m | candidates) = prior(m) + forest(m), where prior(m) = Σ over the task's other
 * candidates d of pw(m, d) / (number of candidates), pw(m, d) = mean ln(perf m / perf d) over
 * the training tasks that measured both (what single-best ranks by; a pair never measured
 * together counts 0, which shrinks a method with little evidence towards the average), and the
 * forest learns the residual ln perf − task mean − prior. Dividing by the number of candidates
 * (not of the others) puts the prior on the scale of the target: ln perf(m) − the task's mean
 * of ln perf = Σ_d (ln perf m − ln perf d) / n, so where one ranking holds exactly the residual
 * is 0 and the trees have nothing to undo. The fixed ranking is the starting point and the trees
 * only learn where tasks depart from it: on data where one ranking holds everywhere the
 * residuals are small and the learner stays close to single-best; where the winner depends on
 * hardware or workload the trees pick that up. The spread of the trees' residual predictions is
 * the uncertainty the safe-default gate (safe-default.ts) uses. Pure apart from the backend.
 */
export const PAIRWISE_PRIOR_LEARNER = 'pairwise-prior'

export interface PairwisePriorJSON {
  learner: typeof PAIRWISE_PRIOR_LEARNER
  pairwise: PairwiseJSON
  /** the residual forest's backend snapshot; null when the history had no ok cell */
  forest: unknown
}

/** A knob vector for a method of a task (its own cell's knobs, else the history's). */
export type KnobsOf = (task: Task, method: string) => Record<string, number>

/** Candidate sets whose priors a model keeps (a daemon asks about a few sets: the catalog, per model). */
const PRIOR_MEMO_MAX = 256

export class PairwisePriorModel {
  /** priors per candidate set (issue #19 item 3): they depend on the set only, not on the task */
  private readonly priorMemo = new Map<string, readonly number[]>()
  constructor (readonly pairwise: Pairwise, readonly forest: RegressionForest | null) {}

  /** pairwise advantage of m summed over the other candidates / the number of candidates (0 for pairs never measured together) */
  prior (m: string, candidates: readonly string[]): number {
    let s = 0
    for (const d of candidates) if (d !== m) s += this.pairwise.of(m, d) ?? 0
    return candidates.length > 0 ? s / candidates.length : 0
  }

  /**
   * Predicted ln perf of each candidate relative to the candidates' mean, with the trees' spread.
   * `X[i]` is candidate i's feature row (features.ts featureVector order).
   */
  predictRows (X: number[][], candidates: readonly string[]): ForestPrediction {
    const p = this.forest?.predict(X) ?? { mean: X.map(() => 0), std: X.map(() => 0) }
    const prior = this.priors(candidates)
    return { mean: p.mean.map((v, i) => v + prior[i]), std: p.std }
  }

  /** `predictRows` of the rows `task.concat(tails[i])` (RegressionForest.predictParts), without building them where the forest can. */
  predictParts (task: readonly number[], tails: ReadonlyArray<readonly number[]>, candidates: readonly string[]): ForestPrediction {
    const f = this.forest
    const p = f == null ? { mean: tails.map(() => 0), std: tails.map(() => 0) } : f.predictParts != null ? f.predictParts(task, tails) : f.predict(tails.map(k => task.concat(k)))
    const prior = this.priors(candidates)
    return { mean: p.mean.map((v, i) => v + prior[i]), std: p.std }
  }

  /**
   * `prior` of each candidate, remembered per candidate set: the same numbers, without the
   * O(candidates²) pairwise lookups on every recommend (with the history's settings a model has
   * dozens of candidates).
   */
  priors (candidates: readonly string[]): readonly number[] {
    const key = candidates.join('\u0000')
    let p = this.priorMemo.get(key)
    if (p == null) {
      if (this.priorMemo.size >= PRIOR_MEMO_MAX) this.priorMemo.clear()
      p = candidates.map(m => this.prior(m, candidates))
      this.priorMemo.set(key, p)
    }
    return p
  }

  toJSON (): PairwisePriorJSON {
    return { learner: PAIRWISE_PRIOR_LEARNER, pairwise: this.pairwise.toJSON(), forest: this.forest?.toJSON() ?? null }
  }

  static load (j: PairwisePriorJSON, backend: LearnerBackend): PairwisePriorModel {
    return new PairwisePriorModel(Pairwise.fromJSON(j.pairwise), j.forest == null ? null : backend.load(j.forest))
  }
}

/** Whether a value is a well-formed PairwisePriorJSON (snapshots come from disk). */
export function isPairwisePriorJSON (v: unknown): v is PairwisePriorJSON {
  if (v == null || typeof v !== 'object') return false
  const o = v as Partial<PairwisePriorJSON>
  return o.learner === PAIRWISE_PRIOR_LEARNER && o.pairwise != null && Array.isArray(o.pairwise.pairs) && 'forest' in o
}

/** Training rows of the residual forest: one per ok cell with a finite performance. */
export function residualRows (tasks: readonly Task[], pairwise: Pairwise, knobsOf: KnobsOf): { X: number[][], y: number[], groups: number[] } {
  const model = new PairwisePriorModel(pairwise, null)
  const X: number[][] = []
  const y: number[] = []
  const groups: number[] = []
  for (const [ti, t] of tasks.entries()) {
    const perf = [...perfOf(t)].filter(([, p]) => Number.isFinite(p))
    const cands = perf.map(([m]) => m)
    const lp = perf.map(([, p]) => logPerf(p))
    const mu = lp.reduce((a, b) => a + b, 0) / Math.max(1, lp.length)
    perf.forEach(([m], i) => {
      const c = t.cells.get(m)
      if (c == null || c.failed) return
      X.push(featureVector(t.info, knobsOf(t, m)))
      y.push(lp[i] - mu - model.prior(m, cands))
      groups.push(ti)
    })
  }
  return { X, y, groups }
}

/** Train the learner on some tasks (every task with a reference and a finite performance counts). */
export async function trainPairwisePrior (tasks: readonly Task[], backend: LearnerBackend, fo: ForestOptions, knobsOf: KnobsOf = cellKnobs): Promise<PairwisePriorModel> {
  const pairwise = new Pairwise(tasks)
  const { X, y, groups } = residualRows(tasks, pairwise, knobsOf)
  // the task of each row: a backend that holds rows out (boosting.ts) keeps a task's rows together
  const forest = X.length > 0 ? await backend.train(X, y, { ...fo, groups }) : null
  return new PairwisePriorModel(pairwise, forest)
}

function cellKnobs (t: Task, m: string): Record<string, number> {
  return t.cells.get(m)?.knobs ?? {}
}

/** The learner as a Predictor of history tasks (eval and the safe-default checks). */
export function priorPredictorOf (model: PairwisePriorModel, methodKnobs: Record<string, Record<string, number>>): Predictor {
  return (t, cands) => model.predictRows(cands.map(m => featureVector(t.info, t.cells.get(m)?.knobs ?? methodKnobs[m] ?? {})), cands)
}
