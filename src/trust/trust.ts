import type { RecordBody } from '../records/types.js'
import { authorMedians } from '../meta/aggregate.js'

/**
 * Per-author trust (pure). Issue #7: trust is earned by agreement between an author's claims
 * and what this peer measured itself on comparable hardware (spot checks), and lost by
 * disagreement, equivocation and invalid messages. New authors start with bounded influence:
 * all unproven authors together weigh at most `unprovenCap` (by default as much as one fully
 * proven author), so a thousand fresh identities weigh no more than one proven peer.
 *
 * Everything here is recomputed from evidence (claims in the store, equivocation evidence,
 * violation counters), never accumulated incrementally: replaying a record cannot move trust.
 */

export interface TrustParams {
  /** |ln(claim / own)| at or below this is agreement (1.4x: run-to-run and machine-to-machine noise) */
  agreeLogRatio: number
  /** above this (2x) is disagreement; in between counts for neither */
  disagreeLogRatio: number
  /** on hardware that is only of the same class (cpu model, backend, cores), tolerances widen by this factor */
  classTolerance: number
  /** agreements needed before an author counts as proven */
  provenAgreements: number
  /** a proven author also needs at least this score */
  provenScore: number
  /** below this score an author is distrusted: weight 0 */
  minScore: number
  /** an unproven author's weight before the cap */
  newcomerWeight: number
  /** the summed weight of all unproven authors is at most this */
  unprovenCap: number
  /** every this many violations (invalid messages) halve the score */
  violationHalving: number
  /**
   * one disagreement counts as this many agreements against: honest peers rarely differ by 2x on
   * the same machine, so a liar who is truthful on most cells to earn trust still loses it
   */
  disagreeWeight: number
}

export const DEFAULT_TRUST_PARAMS: TrustParams = {
  agreeLogRatio: Math.log(1.4),
  disagreeLogRatio: Math.log(2),
  classTolerance: 1.5,
  provenAgreements: 3,
  provenScore: 0.6,
  minScore: 0.5,
  newcomerWeight: 0.5,
  unprovenCap: 1,
  violationHalving: 10,
  disagreeWeight: 6
}

export type TrustStatus = 'self' | 'proven' | 'unproven' | 'distrusted' | 'equivocator'

export interface AuthorEvidence {
  /** cells where the author's claim matched this peer's own measurement */
  agree: number
  disagree: number
  /** cells compared on same-class (not identical) hardware, included in agree/disagree */
  classChecks: number
  /** seqs for which the author signed two different bodies (store evidence) */
  equivocations: number
  /** invalid messages and rate-limit strikes attributed to the author's peer id */
  violations: number
  /** cells the author claims (records it authored, grouped) */
  cells: number
}

export interface AuthorTrust extends AuthorEvidence {
  author: string
  /** Beta-reputation mean (agree + 1)/(agree + disagreeWeight·disagree + 2), halved per `violationHalving` violations */
  score: number
  status: TrustStatus
  /** influence in aggregation and votes, after the unproven cap */
  weight: number
}

export function emptyEvidence (): AuthorEvidence {
  return { agree: 0, disagree: 0, classChecks: 0, equivocations: 0, violations: 0, cells: 0 }
}

export function scoreOf (e: AuthorEvidence, p: TrustParams = DEFAULT_TRUST_PARAMS): number {
  if (e.equivocations > 0) return 0
  const beta = (e.agree + 1) / (e.agree + p.disagreeWeight * e.disagree + 2)
  return beta * Math.pow(0.5, e.violations / p.violationHalving)
}

export function statusOf (e: AuthorEvidence, self: boolean, p: TrustParams = DEFAULT_TRUST_PARAMS): TrustStatus {
  if (self) return 'self'
  if (e.equivocations > 0) return 'equivocator'
  const s = scoreOf(e, p)
  if (s < p.minScore) return 'distrusted'
  if (e.agree >= p.provenAgreements && s >= p.provenScore) return 'proven'
  return 'unproven'
}

/**
 * Scores, statuses and capped weights for every author. Self weighs 1, proven authors their
 * score (≤ 1), distrusted authors and equivocators 0, unproven authors min(score, newcomerWeight)
 * scaled down together so that their sum is at most `unprovenCap`.
 */
export function computeTrust (evidence: ReadonlyMap<string, AuthorEvidence>, self: string, p: TrustParams = DEFAULT_TRUST_PARAMS): Map<string, AuthorTrust> {
  const out = new Map<string, AuthorTrust>()
  let unprovenSum = 0
  for (const [author, e] of evidence) {
    const status = statusOf(e, author === self, p)
    const score = author === self ? 1 : scoreOf(e, p)
    let weight = 0
    if (status === 'self') weight = 1
    else if (status === 'proven') weight = score
    else if (status === 'unproven') { weight = Math.min(score, p.newcomerWeight); unprovenSum += weight }
    out.set(author, { author, ...e, score, status, weight })
  }
  if (unprovenSum > p.unprovenCap) {
    const f = p.unprovenCap / unprovenSum
    for (const t of out.values()) if (t.status === 'unproven') t.weight *= f
  }
  return out
}

/**
 * The weight of an author not in the table (a claim that arrived after the last evaluation):
 * unproven, sharing the cap with the other unproven authors.
 */
export function unknownAuthorWeight (table: ReadonlyMap<string, AuthorTrust>, p: TrustParams = DEFAULT_TRUST_PARAMS): number {
  let n = 1
  for (const t of table.values()) if (t.status === 'unproven') n++
  return Math.min(0.5 * p.newcomerWeight, p.unprovenCap / n)
}

// ---------------------------------------------------------------- claims and spot-check comparison

/** The part of a record body trust reads. */
export type ClaimBody = Pick<RecordBody, 'author' | 'hardware' | 'model' | 'workload' | 'method' | 'result'>

/** Exact cell: same machine fingerprint. */
export function cellKeyOf (b: ClaimBody): string {
  return `${b.hardware.id}|${b.model.id}|${b.workload.name}|${b.method.id}`
}

/** Comparable hardware: same CPU model, backend and core count (another machine of the same kind). */
export function classCellKeyOf (b: ClaimBody): string {
  return `${b.hardware.cpuModel}/${b.hardware.backend}/${b.hardware.cores}|${b.model.id}|${b.workload.name}|${b.method.id}`
}

interface CellClaims {
  /** author → throughput values (ok records) */
  byAuthor: Map<string, number[]>
}

/**
 * Every ok claim, indexed by exact cell and by hardware-class cell (throughput, total tokens/s:
 * the quantity selection ranks by). Bounded by the store's own retention.
 */
export class ClaimIndex {
  readonly exact = new Map<string, CellClaims>()
  readonly byClass = new Map<string, CellClaims>()
  /** author → number of distinct exact cells claimed */
  readonly authorCells = new Map<string, Set<string>>()
  /** exact cell key → the claim body fields needed to describe it (first seen) */
  readonly cellInfo = new Map<string, { hardwareId: string, modelId: string, workload: string, method: string, task: string }>()
  size = 0

  add (b: ClaimBody): void {
    const key = cellKeyOf(b)
    let cells = this.authorCells.get(b.author)
    if (cells == null) this.authorCells.set(b.author, cells = new Set())
    cells.add(key)
    if (!this.cellInfo.has(key)) {
      this.cellInfo.set(key, { hardwareId: b.hardware.id, modelId: b.model.id, workload: b.workload.name, method: b.method.id, task: `${b.hardware.id}|${b.model.id}|${b.workload.name}` })
    }
    if (!b.result.ok || !(b.result.totalTokensPerSecond > 0)) return
    this.size++
    for (const [map, k] of [[this.exact, key], [this.byClass, classCellKeyOf(b)]] as const) {
      let c = map.get(k)
      if (c == null) map.set(k, c = { byAuthor: new Map() })
      let l = c.byAuthor.get(b.author)
      if (l == null) c.byAuthor.set(b.author, l = [])
      l.push(b.result.totalTokensPerSecond)
    }
  }

  authors (): string[] {
    return [...this.authorCells.keys()]
  }
}

type Verdict = 'agree' | 'disagree' | 'neutral'

export function compareClaim (claim: number, own: number, tolerance: number, p: TrustParams = DEFAULT_TRUST_PARAMS): Verdict {
  const d = Math.abs(Math.log(claim / own))
  if (!Number.isFinite(d)) return 'disagree'
  if (d <= p.agreeLogRatio * tolerance) return 'agree'
  if (d > p.disagreeLogRatio * tolerance) return 'disagree'
  return 'neutral'
}

/**
 * Spot-check evidence: for every cell this peer (`self`) measured itself, compare each other
 * author's median claim with this peer's median — on the identical machine fingerprint when
 * there is one, else on the same hardware class with wider tolerances. One verdict per
 * (author, cell), however many records the author sent.
 */
export function spotCheckEvidence (index: ClaimIndex, self: string, p: TrustParams = DEFAULT_TRUST_PARAMS): Map<string, AuthorEvidence> {
  const ev = new Map<string, AuthorEvidence>()
  const get = (a: string): AuthorEvidence => {
    let e = ev.get(a)
    if (e == null) ev.set(a, e = emptyEvidence())
    return e
  }
  for (const [a, cells] of index.authorCells) get(a).cells = cells.size
  const checkedExact = new Set<string>()
  const visit = (map: Map<string, CellClaims>, tolerance: number, isClass: boolean): void => {
    for (const c of map.values()) {
      const mine = c.byAuthor.get(self)
      if (mine == null || c.byAuthor.size < 2) continue
      const medians = authorMedians([...c.byAuthor].flatMap(([author, vs]) => vs.map(value => ({ author, value }))))
      const own = medians.get(self)!
      for (const [author, claim] of medians) {
        if (author === self) continue
        if (isClass && checkedExact.has(author)) continue
        if (!isClass) checkedExact.add(author)
        const e = get(author)
        const v = compareClaim(claim, own, tolerance, p)
        if (v === 'neutral') continue
        if (v === 'agree') e.agree++
        else e.disagree++
        if (isClass) e.classChecks++
      }
    }
  }
  visit(index.exact, 1, false)
  // class-level comparisons only for authors never compared on an identical machine
  visit(index.byClass, p.classTolerance, true)
  return ev
}
