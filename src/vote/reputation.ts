/**
 * Reputation of vote authors (docs/VOTES.md). Every author starts at the same weight; when this
 * node later measures methods itself in a class, each author's ballot for that class (cast
 * before the measurement) is scored against what was measured, and the author's weight is
 * multiplied by exp(eta × agreement), clipped to [wMin, wMax]. Agreement in [-1, 1] is the mean
 * of
 * - a Kendall-tau rank correlation over the pairs of methods both the ballot and the
 *   measurement cover (pairs measured within `tieTolerance` of each other are noise: skipped);
 * - a top-1 hit: +1 when the ballot's best (among measured methods) is within `tieTolerance` of
 *   the measured best, else -1 — the choice is what selection acts on.
 * Multiplicative weights (Hedge) converge on the authors that predict well while the clip keeps
 * any author from dominating (wMax) or being silenced forever (wMin): one lucky or unlucky
 * class moves a weight by at most a factor exp(eta).
 */
export interface ReputationParams {
  initial: number
  wMin: number
  wMax: number
  eta: number
  tieTolerance: number
}

export const DEFAULT_REPUTATION: ReputationParams = { initial: 1, wMin: 0.1, wMax: 5, eta: 0.5, tieTolerance: 0.03 }

export interface Agreement {
  /** Kendall tau over informative pairs, 0 when none */
  tau: number
  /** ballot's top (among measured) is within tolerance of the measured best */
  top1Hit: boolean
  /** methods both ranked and measured */
  common: number
  /** (tau + (hit ? 1 : -1)) / 2, in [-1, 1] */
  score: number
}

/**
 * Score a ballot's ranking (best first) against measured objective values (higher is better).
 * Undefined when fewer than 2 methods are in common: nothing to learn from.
 */
export function agreement (ranking: string[], measured: Map<string, number>, tieTolerance = DEFAULT_REPUTATION.tieTolerance): Agreement | undefined {
  const common = ranking.filter(m => measured.has(m) && Number.isFinite(measured.get(m)))
  if (common.length < 2) return undefined
  let conc = 0
  let disc = 0
  for (let i = 0; i < common.length; i++) {
    for (let j = i + 1; j < common.length; j++) {
      // the ballot prefers common[i] over common[j]
      const vi = measured.get(common[i]) as number
      const vj = measured.get(common[j]) as number
      const scale = Math.max(Math.abs(vi), Math.abs(vj))
      if (scale === 0 || Math.abs(vi - vj) / scale <= tieTolerance) continue
      if (vi > vj) conc++
      else disc++
    }
  }
  const tau = conc + disc > 0 ? (conc - disc) / (conc + disc) : 0
  const best = Math.max(...common.map(m => measured.get(m) as number))
  const topVal = measured.get(common[0]) as number
  const top1Hit = best <= 0 ? topVal >= best : (best - topVal) / best <= tieTolerance
  return { tau, top1Hit, common: common.length, score: (tau + (top1Hit ? 1 : -1)) / 2 }
}

export function updateWeight (weight: number, score: number, p: ReputationParams = DEFAULT_REPUTATION): number {
  const w = weight * Math.exp(p.eta * Math.max(-1, Math.min(1, score)))
  return Math.min(p.wMax, Math.max(p.wMin, w))
}

export interface AuthorReputation {
  weight: number
  updates: number
  /** last agreement score */
  last?: number
  /** per class: seq of the ballot last scored and the own-evidence count it was scored on */
  scored: Record<string, { seq: number, evidence: number }>
}

export interface ReputationUpdate {
  author: string
  key: string
  before: number
  after: number
  agreement: Agreement
}

export class ReputationBook {
  private readonly authors = new Map<string, AuthorReputation>()
  readonly params: ReputationParams

  constructor (params: Partial<ReputationParams> = {}) {
    this.params = { ...DEFAULT_REPUTATION, ...params }
  }

  weight (author: string): number {
    return this.authors.get(author)?.weight ?? this.params.initial
  }

  get (author: string): AuthorReputation | undefined {
    return this.authors.get(author)
  }

  /**
   * Score one author's ballot in class `key` against this node's own measurements
   * (`ownEvidence` = how many own records they rest on). The same ballot is scored at most once
   * per growth of own evidence, so re-delivering a vote or re-running the update changes nothing.
   */
  observe (author: string, key: string, ballot: { seq: number, ranking: string[] }, measured: Map<string, number>, ownEvidence: number): ReputationUpdate | undefined {
    const rep = this.authors.get(author) ?? { weight: this.params.initial, updates: 0, scored: {} }
    const prev = rep.scored[key]
    if (prev != null && prev.evidence >= ownEvidence) return undefined
    const a = agreement(ballot.ranking, measured, this.params.tieTolerance)
    if (a == null) return undefined
    const before = rep.weight
    rep.weight = updateWeight(rep.weight, a.score, this.params)
    rep.updates++
    rep.last = a.score
    rep.scored[key] = { seq: ballot.seq, evidence: ownEvidence }
    this.authors.set(author, rep)
    return { author, key, before, after: rep.weight, agreement: a }
  }

  entries (): Array<[string, AuthorReputation]> {
    return [...this.authors.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  }

  toJSON (): Record<string, AuthorReputation> {
    return Object.fromEntries(this.entries())
  }

  static fromJSON (json: unknown, params?: Partial<ReputationParams>): ReputationBook {
    const book = new ReputationBook(params)
    if (json == null || typeof json !== 'object') return book
    for (const [a, r] of Object.entries(json as Record<string, AuthorReputation>)) {
      if (r == null || typeof r.weight !== 'number' || !Number.isFinite(r.weight)) continue
      book.authors.set(a, {
        weight: Math.min(book.params.wMax, Math.max(book.params.wMin, r.weight)),
        updates: Number.isInteger(r.updates) ? r.updates : 0,
        last: r.last,
        scored: r.scored != null && typeof r.scored === 'object' ? r.scored : {}
      })
    }
    return book
  }
}
