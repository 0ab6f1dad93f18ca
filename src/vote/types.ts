/**
 * Votes (docs/VOTES.md): each peer periodically signs and gossips its ranking of acceleration
 * methods for every task class it has evidence on. Peers tally the latest vote of each author per
 * class into a committee ranking, weighting authors by reputation.
 */
export const VOTE_VERSION = 1


/** One method in an author's ranking for a class, best first. */
export interface VoteEntry {
  /** method catalog id, e.g. "prefix-cache" */
  method: string
  /** the author's predicted objective value, higher is better (informative only: the tally uses ranks) */
  score: number
}

/** The author's ranking for one task class (see task-class.ts for the key). */
export interface ClassVote {
  /** task class key, e.g. "v1|m=ab12…|w=m-p-4|b=cpu|o=throughput" */
  key: string
  /** best first, distinct methods */
  ranking: VoteEntry[]
  /** what the ranking rests on: records and distinct authors of the history in that class */
  evidence: { records: number, authors: number }
}

/** The signed body of one vote message. */
export interface VoteBody {
  v: number
  /** author peer id (ed25519) */
  author: string
  /** per-author increasing number: a higher seq replaces the author's previous vote per class */
  seq: number
  /** creation time, ms since the Unix epoch */
  timestamp: number
  /** the author's meta-model snapshot version the ranking came from ("" when none) */
  snapshot: string
  classes: ClassVote[]
}

export interface SignedVote {
  body: VoteBody
  /** canonical encoding of body */
  bytes: Uint8Array
  /** ed25519 signature over VOTE_DOMAIN || bytes */
  signature: Uint8Array
}
