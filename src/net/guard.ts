import type { NetworkGuard } from './types.js'

/**
 * Flood and abuse control at the peer level (issue #7), plugged into the network through its
 * NetworkGuard hooks (src/net/types.ts). It only ever tightens the network's built-in limits:
 * - config allow/deny lists: a denied peer (or, with a non-empty allow list, any other peer)
 *   gets nothing validated and no sync session;
 * - a per-peer records-gossip token bucket (sustained messages/s plus a burst, so an honest
 *   peer relaying a bulk import of a few thousand records is not punished): messages beyond it
 *   are dropped unvalidated (Ignore: sync repairs anything honest that was dropped);
 * - every excess message and every invalid message adds to the peer's penalty, which feeds
 *   gossipsub's application score P5: at a penalty of 8 the score reaches the graylist threshold
 *   (the network maps penalty 8 to its threshold, see NetworkGuard.appSpecificScore) and
 *   gossipsub ignores the peer's RPCs and prunes it from the mesh. The penalty decays
 *   (half-life `penaltyHalfLifeMs`), so a peer that stops recovers;
 * - a peer whose penalty reaches the graylist level is also banned: the network hangs up on it
 *   and refuses its connections until the penalty has decayed to half that level (one
 *   half-life, 60 s by default). Graylisting alone leaves the connection open, and a flooder's
 *   ignored RPCs still cost the honest node decryption and decoding of every message.
 *   Peers on the allow list are never banned.
 * - a per-author records-gossip budget for authors that are not proven (trust status): however
 *   many peers relay them, a fresh identity's gossiped records are verified, stored and forwarded
 *   at `gossipPerAuthorPerSecond` plus a burst; beyond it they are dropped before any parsing or
 *   verification (Ignore, no penalty for the relayer: anti-entropy sync still brings them). A
 *   unit is reserved when a message arrives and given back unless it proves a valid new record of
 *   that author, so forgeries hold an honest author's budget only while they wait for
 *   verification (and their sender is banned after a few).
 */
export interface PeerGuardOptions {
  allowPeers?: string[]
  denyPeers?: string[]
  /** peers with standing that the allow list would not admit alone: the operator's fleet (config net.priorityPeers) */
  priorityPeers?: string[]
  /** records-topic messages per peer per second (sustained) before excess counts against the peer */
  gossipPerPeerPerSecond?: number
  /** messages a peer may send at once above the sustained rate */
  gossipBurst?: number
  /** penalty per message above the rate (8 = graylisted) */
  excessPenalty?: number
  /** penalty per invalid message (on top of gossipsub's own P4 for records) */
  invalidPenalty?: number
  /**
   * penalty per stalled RPC stream (E_REQ_STALLED: a length prefix, then nothing): no honest
   * client does that, and each one held a slot for seconds, so 8 of them ban the peer
   */
  stallPenalty?: number
  penaltyHalfLifeMs?: number
  /** gossiped records per second (sustained) from one author that is not proven */
  gossipPerAuthorPerSecond?: number
  /** records such an author may have gossiped at once above the sustained rate */
  gossipAuthorBurst?: number
  now?: () => number
}

export interface PeerRecord {
  peer: string
  rateLimited: number
  invalid: number
  /** invalid messages by code */
  codes: Record<string, number>
  penalty: number
  /** banned now (hung up on, connections refused), and since when (ms since epoch) */
  banned: boolean
  bannedAt?: number
}

export interface PeerGuard extends NetworkGuard {
  /** counters for one peer (undefined when it never misbehaved) */
  peer: (peer: string) => PeerRecord | undefined
  /** every peer that misbehaved, worst first */
  peers: () => PeerRecord[]
  totals: () => { rateLimited: number, invalid: number, denied: number, authorLimited: number }
  allowed: (peer: string) => boolean
  /**
   * issue #18: may this peer use the RPC slots kept for peers with standing? On the allow or
   * priority list, or a proven author (trust), and not banned. Fresh identities never are.
   */
  standing: (peer: string) => boolean
  /** the trust service tells which authors are exempt from the per-author budget (proven ones) */
  setAuthorExempt: (exempt: (author: string) => boolean) => void
}

/** the penalty at which a peer is graylisted (and banned) */
const GRAYLIST_PENALTY = 8
/** a ban lasts until the penalty decays below this */
const UNBAN_PENALTY = GRAYLIST_PENALTY / 2

export const DEFAULT_GUARD = {
  gossipPerPeerPerSecond: 100,
  gossipBurst: 300,
  excessPenalty: 0.1,
  invalidPenalty: 0.5,
  stallPenalty: 1,
  penaltyHalfLifeMs: 60_000,
  gossipPerAuthorPerSecond: 20,
  gossipAuthorBurst: 200
}

/**
 * A token bucket (sustained `rate`/s, `burst` at once). The daemon paces its own gossip with the
 * same numbers its neighbours enforce, so an honest bulk import never looks like a flood: records
 * beyond the budget are not gossiped and reach peers by anti-entropy sync instead.
 */
export function createTokenBucket (rate: number, burst: number, now: () => number = Date.now): () => boolean {
  let tokens = burst
  let at = now()
  return () => {
    const t = now()
    tokens = Math.min(burst, tokens + (t - at) * rate / 1000)
    at = t
    if (tokens < 1) return false
    tokens -= 1
    return true
  }
}

/**
 * Token buckets by key (peer or author), each as createTokenBucket: `level(key)` refills and
 * returns the key's bucket, for the caller to spend from or give back to. Bounded: past 10,000
 * keys the table is forgotten (ids rotated by Sybils refill; the guard's penalty table remembers).
 */
function keyedBuckets (rate: number, burst: number, now: () => number): (key: string) => { tokens: number, at: number } {
  const buckets = new Map<string, { tokens: number, at: number }>()
  return (key) => {
    const t = now()
    let b = buckets.get(key)
    if (b == null) {
      if (buckets.size >= 10_000) buckets.clear()
      buckets.set(key, b = { tokens: burst, at: t })
    }
    b.tokens = Math.min(burst, b.tokens + (t - b.at) * rate / 1000)
    b.at = t
    return b
  }
}

/** Spend one token of `peer`'s bucket; false when it is empty. */
function takeFrom (bucket: (key: string) => { tokens: number }): (peer: string) => boolean {
  return (peer) => {
    const b = bucket(peer)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

export function createPeerGuard (opts: PeerGuardOptions = {}): PeerGuard {
  const now = opts.now ?? Date.now
  const allow = new Set(opts.allowPeers ?? [])
  const deny = new Set(opts.denyPeers ?? [])
  const rate = opts.gossipPerPeerPerSecond ?? DEFAULT_GUARD.gossipPerPeerPerSecond
  const excess = opts.excessPenalty ?? DEFAULT_GUARD.excessPenalty
  const invalidPenalty = opts.invalidPenalty ?? DEFAULT_GUARD.invalidPenalty
  const stallPenalty = opts.stallPenalty ?? DEFAULT_GUARD.stallPenalty
  const priority = new Set(opts.priorityPeers ?? [])
  const halfLife = opts.penaltyHalfLifeMs ?? DEFAULT_GUARD.penaltyHalfLifeMs
  const burst = opts.gossipBurst ?? DEFAULT_GUARD.gossipBurst
  const take = takeFrom(keyedBuckets(rate, burst, now))
  // per-author budget (unproven authors)
  const authorBurst = opts.gossipAuthorBurst ?? DEFAULT_GUARD.gossipAuthorBurst
  const authorTokens = keyedBuckets(opts.gossipPerAuthorPerSecond ?? DEFAULT_GUARD.gossipPerAuthorPerSecond, authorBurst, now)
  let authorExempt: (author: string) => boolean = () => false
  let authorLimited = 0
  type Rec = PeerRecord & { at: number }
  const records = new Map<string, Rec>()
  let denied = 0

  const allowed = (peer: string): boolean => !deny.has(peer) && (allow.size === 0 || allow.has(peer))

  const rec = (peer: string): Rec => {
    let r = records.get(peer)
    if (r == null) {
      // bounded: forget the mildest offenders when the table grows (sybils rotate ids)
      if (records.size >= 10_000) {
        const mild = [...records.values()].sort((a, b) => decayed(a) - decayed(b)).slice(0, 1000)
        for (const m of mild) records.delete(m.peer)
      }
      records.set(peer, r = { peer, rateLimited: 0, invalid: 0, codes: {}, penalty: 0, at: now(), banned: false })
    }
    return r
  }
  const decayed = (r: Rec): number => r.penalty * Math.pow(0.5, (now() - r.at) / halfLife)
  const addPenalty = (r: Rec, p: number): void => {
    r.penalty = decayed(r) + p
    r.at = now()
    if (!r.banned && r.penalty >= GRAYLIST_PENALTY && !allow.has(r.peer)) {
      r.banned = true
      r.bannedAt = r.at
    }
  }
  /** whether the ban still holds (lifted, with hysteresis, once the penalty has decayed) */
  const bannedNow = (r: Rec): boolean => {
    if (r.banned && decayed(r) < UNBAN_PENALTY) r.banned = false
    return r.banned
  }
  const view = (r: Rec): PeerRecord => ({ peer: r.peer, rateLimited: r.rateLimited, invalid: r.invalid, codes: { ...r.codes }, penalty: decayed(r), banned: bannedNow(r), ...(r.bannedAt != null ? { bannedAt: r.bannedAt } : {}) })

  return {
    admitGossip (peer) {
      if (!allowed(peer)) { denied++; return false }
      if (!take(peer)) {
        const r = rec(peer)
        r.rateLimited++
        addPenalty(r, excess)
        return false
      }
      return true
    },
    reserveGossipAuthor (author) {
      if (authorExempt(author)) return true
      const b = authorTokens(author)
      if (b.tokens >= 1) { b.tokens -= 1; return true }
      authorLimited++
      return false
    },
    refundGossipAuthor (author) {
      if (authorExempt(author)) return
      const b = authorTokens(author)
      b.tokens = Math.min(authorBurst, b.tokens + 1)
    },
    setAuthorExempt (exempt) { authorExempt = exempt },
    admitSync (peer) {
      if (!allowed(peer)) { denied++; return false }
      return true
    },
    admitConnection (peer) {
      if (!allowed(peer)) return false
      const r = records.get(peer)
      return r == null || !bannedNow(r)
    },
    onViolation (peer, code) {
      const r = rec(peer)
      r.invalid++
      r.codes[code] = (r.codes[code] ?? 0) + 1
      addPenalty(r, code === 'E_REQ_STALLED' ? stallPenalty : invalidPenalty)
    },
    appSpecificScore (peer) {
      const r = records.get(peer)
      return r == null ? 0 : -decayed(r) / GRAYLIST_PENALTY
    },
    peer (peer) {
      const r = records.get(peer)
      return r == null ? undefined : view(r)
    },
    peers () {
      return [...records.values()].map(view)
        .sort((a, b) => b.penalty - a.penalty || (a.peer < b.peer ? -1 : 1))
    },
    totals () {
      let rateLimited = 0
      let invalid = 0
      for (const r of records.values()) { rateLimited += r.rateLimited; invalid += r.invalid }
      return { rateLimited, invalid, denied, authorLimited }
    },
    allowed,
    standing (peer) {
      const r = records.get(peer)
      return allowed(peer) && (r == null || !bannedNow(r)) && (allow.has(peer) || priority.has(peer) || authorExempt(peer))
    }
  }
}
