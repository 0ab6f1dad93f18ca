/**
 * Robust aggregation of one cell across authors (pure). Issue #7: a signature proves who said
 * something, not that it is true, so a cell's value must not be movable by one loud author.
 *
 * Two stages:
 * 1. each author's own records of the cell collapse to that author's median, so repeating a
 *    claim a thousand times adds no weight (one author = one voice);
 * 2. the cell value is the trust-weighted median of the authors' medians: a set of authors
 *    holding less than half of the total weight cannot move it beyond the range spanned by the
 *    others, however extreme their claims (a weighted mean would move without bound).
 */
export interface WeightedValue { value: number, weight: number }

/**
 * Weighted median: the smallest value whose cumulative weight reaches half of the total; when
 * the cumulative weight lands exactly on the half, the midpoint with the next value (so equal
 * weights give the ordinary median). Entries with a non-positive or non-finite weight or value
 * are ignored; NaN when nothing remains.
 */
export function weightedMedian (items: readonly WeightedValue[]): number {
  const xs = items.filter(x => Number.isFinite(x.value) && Number.isFinite(x.weight) && x.weight > 0)
  if (xs.length === 0) return NaN
  xs.sort((a, b) => a.value - b.value)
  const total = xs.reduce((s, x) => s + x.weight, 0)
  const half = total / 2
  let acc = 0
  for (let i = 0; i < xs.length; i++) {
    acc += xs[i].weight
    // relative tolerance: weights are sums of floats
    if (Math.abs(acc - half) <= 1e-12 * total && i + 1 < xs.length) return (xs[i].value + xs[i + 1].value) / 2
    if (acc > half) return xs[i].value
  }
  return xs[xs.length - 1].value
}

export function plainMedian (values: readonly number[]): number {
  return weightedMedian(values.map(value => ({ value, weight: 1 })))
}

export interface AuthorClaim { author: string, value: number }

export interface RobustValue {
  /** the weighted median of the authors' medians (NaN when no author with weight > 0 claimed it) */
  value: number
  /** authors whose claims counted (weight > 0) */
  authors: number
  /** their summed weight */
  weight: number
}

/** Group claims by author → each author's median value. */
export function authorMedians (claims: readonly AuthorClaim[]): Map<string, number> {
  const by = new Map<string, number[]>()
  for (const c of claims) {
    if (!Number.isFinite(c.value)) continue
    let l = by.get(c.author)
    if (l == null) by.set(c.author, l = [])
    l.push(c.value)
  }
  const out = new Map<string, number>()
  for (const [a, vs] of by) out.set(a, plainMedian(vs))
  return out
}

/** Stage 1 + 2 for one cell. `weightOf` returns 0 to exclude an author (equivocators, distrusted). */
export function robustCellValue (claims: readonly AuthorClaim[], weightOf: (author: string) => number): RobustValue {
  const items: WeightedValue[] = []
  let weight = 0
  for (const [author, value] of authorMedians(claims)) {
    const w = weightOf(author)
    if (!(w > 0) || !Number.isFinite(w)) continue
    items.push({ value, weight: w })
    weight += w
  }
  return { value: weightedMedian(items), authors: items.length, weight }
}
