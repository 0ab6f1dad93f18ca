import type { VoteEntry } from './types.js'

/**
 * Weighted Borda count over the latest ballot of each author in one task class.
 *
 * A ballot ranking k methods gives the method at position i (0 = best) (k - i) / k points, and
 * the methods it does not rank 0 points; the committee score of a method is the
 * reputation-weighted mean of its points over ballots, in [0, 1]. Ties go to more weighted first
 * places, then to the method id (deterministic on every peer).
 *
 * Why Borda and not:
 * - plurality (count first places): throws away everything below the top, so two near-equal
 *   methods flip the outcome on one voter, and a method that is everyone's close second loses;
 * - averaging the authors' predicted scores: one author claiming a 10x speedup moves the mean as
 *   much as it likes; with Borda each author moves a method by at most its weight, whatever it
 *   claims (the ranking, not the magnitude, is what it can influence) — the bound issue #7 needs;
 * - Condorcet methods (Schulze, ranked pairs) and Kemeny: better axiomatic properties but a
 *   Condorcet winner need not exist, Kemeny is NP-hard, and neither splits influence as simply
 *   into per-author weights; with a dozen methods Borda is O(authors × methods), explainable
 *   (points per method), and is the maximum-likelihood aggregate under Young's noise model
 *   when voters' errors are independent.
 * Normalising by k keeps a long ballot from outweighing a short one (a GPU peer can rank more
 * methods than a CPU peer); unranked = 0 means "not known to work here", which is the safe side.
 */
export interface Ballot {
  author: string
  seq: number
  timestamp: number
  ranking: VoteEntry[]
  evidence: { records: number, authors: number }
}

export interface CommitteeEntry {
  method: string
  /** weighted mean Borda points in [0, 1] */
  score: number
  /** number of ballots ranking this method */
  voters: number
  /** summed weight of the ballots that rank it first */
  firstWeight: number
}

export interface CommitteeRanking {
  key: string
  ranking: CommitteeEntry[]
  /** ballots tallied */
  voters: number
  totalWeight: number
  /** each ballot's author, weight and top choice */
  ballots: Array<{ author: string, weight: number, top: string, seq: number }>
}

export function bordaPoints (position: number, length: number): number {
  return (length - position) / length
}

export function tally (key: string, ballots: Ballot[], weightOf: (author: string) => number): CommitteeRanking {
  const points = new Map<string, { sum: number, voters: number, first: number }>()
  let totalWeight = 0
  const used: CommitteeRanking['ballots'] = []
  for (const b of ballots) {
    if (b.ranking.length === 0) continue
    const w = weightOf(b.author)
    if (!(w > 0) || !Number.isFinite(w)) continue
    totalWeight += w
    used.push({ author: b.author, weight: w, top: b.ranking[0].method, seq: b.seq })
    const k = b.ranking.length
    b.ranking.forEach((e, i) => {
      const p = points.get(e.method) ?? { sum: 0, voters: 0, first: 0 }
      p.sum += w * bordaPoints(i, k)
      p.voters++
      if (i === 0) p.first += w
      points.set(e.method, p)
    })
  }
  const ranking: CommitteeEntry[] = [...points.entries()].map(([method, p]) => ({
    method,
    score: totalWeight > 0 ? p.sum / totalWeight : 0,
    voters: p.voters,
    firstWeight: p.first
  }))
  ranking.sort((a, b) => b.score - a.score || b.firstWeight - a.firstWeight || (a.method < b.method ? -1 : a.method > b.method ? 1 : 0))
  used.sort((a, b) => (a.author < b.author ? -1 : a.author > b.author ? 1 : 0))
  return { key, ranking, voters: used.length, totalWeight, ballots: used }
}
