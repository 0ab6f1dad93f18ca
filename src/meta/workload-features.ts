import { mean, percentile } from '../util/stats.js'

/**
 * Workload features from the actual token ids (pure). These numbers describe a workload to the
 * meta-model; docs/FEATURES-workload.md defines each one. Ratios are rounded to 4 decimals so
 * that re-running the same workload gives byte-identical features.
 */
export interface FeatureInput {
  /** token ids of each request's prompt, in request order */
  prompts: readonly (readonly number[])[]
  /** output cap of each request */
  maxTokens: readonly number[]
  /** requests in flight together */
  concurrency: number
  /** the baseline's greedy output tokens per request, when known */
  outputs?: ReadonlyArray<readonly number[]>
}

export const NGRAM = 3

function round4 (x: number): number {
  return Math.round(x * 1e4) / 1e4
}

/** Longest prefix common to every sequence. */
export function commonPrefixLength (seqs: readonly (readonly number[])[]): number {
  if (seqs.length === 0) return 0
  let n = Math.min(...seqs.map(s => s.length))
  for (let k = 1; k < seqs.length; k++) {
    const a = seqs[0]
    const b = seqs[k]
    let i = 0
    while (i < n && a[i] === b[i]) i++
    n = i
  }
  return n
}

interface Trie { next: Map<number, Trie> }

/**
 * Sum over requests of the longest prefix each shares with any earlier request: the prompt
 * tokens an ideal prefix cache would not recompute, in arrival order.
 */
export function reusablePrefixTokens (seqs: readonly (readonly number[])[]): number {
  const root: Trie = { next: new Map() }
  let reusable = 0
  seqs.forEach((s, idx) => {
    let node = root
    let matched = 0
    let stillMatching = idx > 0
    for (const t of s) {
      let child = node.next.get(t)
      if (child == null) {
        stillMatching = false
        child = { next: new Map() }
        node.next.set(t, child)
      } else if (stillMatching) {
        matched++
      }
      node = child
    }
    reusable += matched
  })
  return reusable
}

/** Share of output n-grams (n = 3) that also occur in the same request's prompt. */
export function ngramOverlap (prompts: readonly (readonly number[])[], outputs: ReadonlyArray<readonly number[]>, n = NGRAM): number {
  let windows = 0
  let hits = 0
  for (let r = 0; r < Math.min(prompts.length, outputs.length); r++) {
    const p = prompts[r]
    const o = outputs[r]
    if (o.length < n) continue
    const grams = new Set<string>()
    for (let i = 0; i + n <= p.length; i++) grams.add(p.slice(i, i + n).join(','))
    for (let i = 0; i + n <= o.length; i++) {
      windows++
      if (grams.has(o.slice(i, i + n).join(','))) hits++
    }
  }
  return windows === 0 ? 0 : hits / windows
}

export function workloadFeatures (input: FeatureInput): Record<string, number> {
  const lens = input.prompts.map(p => p.length)
  const total = lens.reduce((s, x) => s + x, 0)
  const meanLen = mean(lens)
  const lcp = commonPrefixLength(input.prompts)
  return {
    requests: input.prompts.length,
    promptTokensMean: round4(meanLen),
    promptTokensP50: round4(percentile(lens, 50)),
    promptTokensP95: round4(percentile(lens, 95)),
    promptTokensMax: lens.length === 0 ? 0 : Math.max(...lens),
    totalPromptTokens: total,
    outputTokensMean: round4(mean(input.maxTokens)),
    sharedPrefixRatio: meanLen === 0 || lens.length < 2 ? 0 : round4(Math.min(1, lcp / meanLen)),
    reusablePrefixRatio: total === 0 ? 0 : round4(reusablePrefixTokens(input.prompts) / total),
    ngramOverlap: input.outputs == null ? 0 : round4(ngramOverlap(input.prompts, input.outputs)),
    concurrency: input.concurrency
  }
}
