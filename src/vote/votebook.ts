import type { Ballot } from './tally.js'
import type { VoteBody } from './types.js'

/**
 * The latest ballot of each author per task class. A vote replaces an author's ballot in a class
 * only with a higher seq (replays and reordered gossip are no-ops). Bounded: at most
 * `maxPerClass` authors per class (the oldest ballot is evicted) and `maxClasses` classes.
 */
export interface VoteBookOptions {
  maxPerClass?: number
  maxClasses?: number
}

export interface AddResult {
  /** classes whose ballot for this author was inserted or replaced */
  updated: string[]
  /** classes where the author already had a ballot with seq >= this one */
  stale: string[]
}

export type VoteBookJSON = Record<string, Ballot[]>

export class VoteBook {
  private readonly classes = new Map<string, Map<string, Ballot>>()
  private readonly maxPerClass: number
  private readonly maxClasses: number

  constructor (opts: VoteBookOptions = {}) {
    this.maxPerClass = opts.maxPerClass ?? 256
    this.maxClasses = opts.maxClasses ?? 4096
  }

  add (vote: VoteBody): AddResult {
    const res: AddResult = { updated: [], stale: [] }
    for (const c of vote.classes) {
      let byAuthor = this.classes.get(c.key)
      if (byAuthor == null) {
        if (this.classes.size >= this.maxClasses) { res.stale.push(c.key); continue }
        byAuthor = new Map()
        this.classes.set(c.key, byAuthor)
      }
      const prev = byAuthor.get(vote.author)
      if (prev != null && prev.seq >= vote.seq) { res.stale.push(c.key); continue }
      if (prev == null && byAuthor.size >= this.maxPerClass) {
        let oldest: Ballot | undefined
        for (const b of byAuthor.values()) if (oldest == null || b.timestamp < oldest.timestamp) oldest = b
        if (oldest == null || oldest.timestamp >= vote.timestamp) { res.stale.push(c.key); continue }
        byAuthor.delete(oldest.author)
      }
      byAuthor.set(vote.author, { author: vote.author, seq: vote.seq, timestamp: vote.timestamp, ranking: c.ranking, evidence: c.evidence })
      res.updated.push(c.key)
    }
    return res
  }

  ballots (key: string): Ballot[] {
    return [...(this.classes.get(key)?.values() ?? [])]
  }

  ballot (key: string, author: string): Ballot | undefined {
    return this.classes.get(key)?.get(author)
  }

  keys (): string[] {
    return [...this.classes.keys()].sort()
  }

  authors (): string[] {
    const s = new Set<string>()
    for (const m of this.classes.values()) for (const a of m.keys()) s.add(a)
    return [...s].sort()
  }

  /** drop ballots older than `cutoff` (ms since epoch) */
  prune (cutoff: number): number {
    let n = 0
    for (const [key, m] of this.classes) {
      for (const [a, b] of m) if (b.timestamp < cutoff) { m.delete(a); n++ }
      if (m.size === 0) this.classes.delete(key)
    }
    return n
  }

  toJSON (): VoteBookJSON {
    const out: VoteBookJSON = {}
    for (const k of this.keys()) out[k] = this.ballots(k)
    return out
  }

  static fromJSON (json: unknown, opts?: VoteBookOptions): VoteBook {
    const book = new VoteBook(opts)
    if (json == null || typeof json !== 'object') return book
    for (const [key, ballots] of Object.entries(json as VoteBookJSON)) {
      if (!Array.isArray(ballots)) continue
      for (const b of ballots) {
        if (b == null || typeof b.author !== 'string' || !Array.isArray(b.ranking)) continue
        book.add({ v: 1, author: b.author, seq: b.seq, timestamp: b.timestamp, snapshot: '', classes: [{ key, ranking: b.ranking, evidence: b.evidence }] })
      }
    }
    return book
  }
}
