import type { GossipSub } from '@libp2p/gossipsub'
import type { SignedRecord } from '../records/types.js'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { ControlApi } from '../contracts/api.js'
import type { RecordEventDetail, RecordEvents } from '../contracts/records.js'
import type { Startable } from '../contracts/service.js'
import type { RecordStore } from '../store/types.js'
import { errorMessage } from '../util/errors.js'
import { log, type Logger } from '../util/log.js'
import type { PeerGuard } from '../net/guard.js'
import { SCORE_THRESHOLDS } from '../net/libp2p.js'
import { pickSpotChecks, type SpotCheckCell } from './spotcheck.js'
import { ClaimIndex, computeTrust, DEFAULT_TRUST_PARAMS, emptyEvidence, spotCheckEvidence, unknownAuthorWeight, type AuthorEvidence, type AuthorTrust, type ClaimBody, type TrustParams } from './trust.js'

/**
 * The daemon's trust service (issue #7): keeps every ok claim in a ClaimIndex, re-evaluates
 * per-author trust from the evidence every `trust.evaluateIntervalMs` when something changed
 * (spot checks against this node's own records, store equivocation evidence, the peer guard's
 * violation counters), persists the table under `trust:book`, and serves it:
 * - `weight(author)` / `weights()` for robust training (src/meta) and the vote tally (src/vote);
 * - `spotChecks(modelId, hardwareId)` for the background benchmark (src/bench/background.ts);
 * - GET /status gains `trust: {authors, proven, unproven, distrusted, equivocators, graylisted, ...}`;
 *   GET /trust returns the whole table and the peers that misbehaved.
 * The node hands it to meta, vote and bench as their `trust` component (src/node/services.ts).
 */
export const TRUST_KEY = 'trust:book'
/** the graylist threshold our gossipsub runs with: below it, a peer's RPCs are ignored */
export const GRAYLIST_THRESHOLD = SCORE_THRESHOLDS.graylistThreshold

export interface TrustSummary {
  authors: number
  proven: number
  unproven: number
  distrusted: number
  equivocators: number
  /** peers whose gossipsub score is below the graylist threshold now */
  graylisted: number
  /** distinct peers ever seen below it since start */
  graylistedEver: number
  rateLimited: number
  invalid: number
  /** gossiped records dropped because their (unproven) author was over its gossip budget */
  authorLimited: number
  evaluatedAt: number
}

export interface TrustService extends Startable {
  weight: (author: string) => number
  /** author → weight for every author with claims (for the training worker, which cannot call back) */
  weights: () => Record<string, number>
  table: () => AuthorTrust[]
  get: (author: string) => AuthorTrust | undefined
  spotChecks: (modelId: string, hardwareId: string, k?: number) => SpotCheckCell[]
  summary: () => TrustSummary
  /** re-evaluate now (tests, harness) */
  evaluate: () => Promise<void>
  graylisted: () => string[]
}

export interface TrustComponents {
  peerId: PeerId
  store: RecordStore
  events: RecordEvents
  api: ControlApi
  network: { libp2p: Libp2p }
  peerGuard?: PeerGuard
}

/** The `trust` section of the config (every field optional: older config files keep working). */
/** for callers without a config (tests, the harness); config/default.json holds the same value */
export const DEFAULT_TRUST_EVALUATE_INTERVAL_MS = 5000

export interface TrustConfig {
  evaluateIntervalMs?: number
  unprovenCap?: number
  spotChecks?: boolean
}

export interface TrustServiceInit {
  config?: TrustConfig
  params?: Partial<TrustParams>
}

/**
 * Peers below the gossipsub graylist threshold: now (refreshed by `check()`) and ever since start,
 * with the time each was first seen there.
 */
class GraylistTracker {
  readonly now = new Set<string>()
  readonly ever = new Map<string, number>()

  check (libp2p: Libp2p, peerGuard: PeerGuard | undefined): void {
    const ps = (libp2p.services as { pubsub?: GossipSub & { getScore: (p: string) => number } }).pubsub
    if (ps == null) return
    this.now.clear()
    for (const p of ps.getPeers()) {
      const id = p.toString()
      if (ps.getScore(id) < GRAYLIST_THRESHOLD) this.mark(id, Date.now())
    }
    // a peer the guard banned at the graylist level is disconnected, so gossipsub may no longer
    // list it: count it from the guard, with the time it crossed
    for (const p of peerGuard?.peers() ?? []) {
      if (p.banned) this.mark(p.peer, p.bannedAt ?? Date.now())
    }
  }

  private mark (peer: string, since: number): void {
    this.now.add(peer)
    if (!this.ever.has(peer)) this.ever.set(peer, since)
  }

  list (): Array<{ peer: string, since: number, now: boolean }> {
    return [...this.ever].map(([peer, since]) => ({ peer, since, now: this.now.has(peer) }))
  }
}

/** The peer guard's violation counters, coarsened: a change means the table is worth re-evaluating. */
function violationsKey (peerGuard: PeerGuard | undefined): string {
  const t = peerGuard?.totals()
  return t == null ? '' : `${t.invalid}/${Math.floor(t.rateLimited / 100)}`
}

/** Every author's evidence: spot checks from the index, the store's equivocations, the guard's violations. */
function collectEvidence (index: ClaimIndex, self: string, params: TrustParams, equivocations: ReadonlyMap<string, number>, peerGuard: PeerGuard | undefined): Map<string, AuthorEvidence> {
  const evidence = spotCheckEvidence(index, self, params)
  for (const [author, n] of equivocations) {
    let e = evidence.get(author)
    if (e == null) evidence.set(author, e = emptyEvidence())
    e.equivocations = n
  }
  // a record's author signs with the same key as its peer id: violations of a peer count against that author
  for (const p of peerGuard?.peers() ?? []) {
    const e = evidence.get(p.peer)
    if (e != null) e.violations = p.invalid + Math.floor(p.rateLimited / 100)
  }
  if (!evidence.has(self)) evidence.set(self, emptyEvidence())
  return evidence
}

/**
 * Equivocations per author: two records at one sequence number, and (sync 2.0.0) two signed log
 * heads of one author kept as evidence because they describe different logs (same length and
 * another root, or a head that disagrees with the author's records and the kept head beside it;
 * docs/records.md). A lone evidence head is not counted: it proves nothing without its pair.
 */
export async function equivocationCounts (store: RecordStore): Promise<Map<string, number>> {
  const eq = new Map<string, number>()
  for (const ev of await store.evidence()) eq.set(ev.author, (eq.get(ev.author) ?? 0) + 1)
  const heads = new Map<string, Set<string>>()
  for (const h of (await store.logHeadEvidence?.()) ?? []) {
    let roots = heads.get(h.body.author)
    if (roots == null) heads.set(h.body.author, roots = new Set())
    roots.add(`${h.body.length}:${h.body.root}`)
  }
  for (const [author, roots] of heads) if (roots.size >= 2) eq.set(author, (eq.get(author) ?? 0) + roots.size - 1)
  return eq
}

function countStatuses (table: ReadonlyMap<string, AuthorTrust>): Pick<TrustSummary, 'authors' | 'proven' | 'unproven' | 'distrusted' | 'equivocators'> {
  const s = { authors: table.size, proven: 0, unproven: 0, distrusted: 0, equivocators: 0 }
  for (const t of table.values()) {
    if (t.status === 'proven') s.proven++
    else if (t.status === 'unproven') s.unproven++
    else if (t.status === 'distrusted') s.distrusted++
    else if (t.status === 'equivocator') s.equivocators++
  }
  return s
}

/**
 * The trust table over the claim index and when it is stale. Every reader goes through `fresh()`:
 * records that arrived since the last evaluation are folded in synchronously (with the cached
 * store evidence), so an author whose claims arrived a moment ago already shares the unproven cap
 * (or is distrusted), never gets a default weight. `evaluate()` also refreshes the store's
 * equivocation evidence and persists the table.
 */
class TrustEvaluator {
  index = new ClaimIndex()
  table = new Map<string, AuthorTrust>()
  /** the weight of an author not in the table yet */
  unknownWeight: number
  evaluatedAt = 0
  private dirty = true
  /** records indexed, and how many the last full (async) evaluation had seen */
  private seen = 0
  private seenAtEvaluation = -1
  private lastViolations = ''
  /** equivocations per author, from the store's evidence (refreshed by the async evaluation) */
  private equivocations = new Map<string, number>()
  private evaluating: Promise<void> | undefined
  private readonly self: string
  readonly params: TrustParams
  private readonly c: Pick<TrustComponents, 'store' | 'peerGuard'>
  private readonly logger: Logger

  constructor (self: string, params: TrustParams, c: Pick<TrustComponents, 'store' | 'peerGuard'>, logger: Logger) {
    this.self = self
    this.params = params
    this.c = c
    this.logger = logger
    this.unknownWeight = unknownAuthorWeight(this.table, params)
  }

  /** Rebuild the index from the store (start-up: the evaluation that follows counts these). */
  async load (): Promise<void> {
    this.index = new ClaimIndex()
    for await (const r of this.c.store.all() as AsyncIterable<SignedRecord>) this.index.add(r.body)
  }

  /** A record that arrived while running. */
  add (body: ClaimBody): void {
    this.index.add(body)
    this.dirty = true
    this.seen++
  }

  /** Recompute the table from the index and the cached evidence (sync). */
  private recompute (): void {
    this.table = computeTrust(collectEvidence(this.index, this.self, this.params, this.equivocations, this.c.peerGuard), this.self, this.params)
    this.unknownWeight = unknownAuthorWeight(this.table, this.params)
    this.evaluatedAt = Date.now()
    this.dirty = false
  }

  fresh (): void {
    if (this.dirty) this.recompute()
  }

  weight (author: string): number {
    this.fresh()
    return this.table.get(author)?.weight ?? (author === this.self ? 1 : this.unknownWeight)
  }

  /** Something the full evaluation reads changed since it last ran: records, or the guard's violations. */
  stale (): boolean {
    return this.seen !== this.seenAtEvaluation || violationsKey(this.c.peerGuard) !== this.lastViolations
  }

  async evaluate (): Promise<void> {
    if (this.evaluating != null) await this.evaluating
    this.seenAtEvaluation = this.seen
    this.lastViolations = violationsKey(this.c.peerGuard)
    this.evaluating = this.evaluateInner().finally(() => { this.evaluating = undefined })
    await this.evaluating
  }

  private async evaluateInner (): Promise<void> {
    this.equivocations = await equivocationCounts(this.c.store)
    this.recompute()
    try {
      await this.c.store.putMeta(TRUST_KEY, { evaluatedAt: this.evaluatedAt, params: this.params, authors: [...this.table.values()] })
    } catch (err) {
      this.logger.error('persisting trust failed: %s', errorMessage(err))
    }
  }

  /** Resolves when the evaluation in flight (if any) ends, whatever its outcome. */
  async settled (): Promise<void> {
    try { await this.evaluating } catch {}
  }
}

export function createTrustService (init: TrustServiceInit, c: TrustComponents): TrustService {
  const logger = log('trust')
  const cfg = init.config ?? {}
  const params: TrustParams = { ...DEFAULT_TRUST_PARAMS, ...(cfg.unprovenCap != null ? { unprovenCap: cfg.unprovenCap } : {}), ...init.params }
  const self = c.peerId.toString()
  const intervalMs = cfg.evaluateIntervalMs ?? DEFAULT_TRUST_EVALUATE_INTERVAL_MS
  const trust = new TrustEvaluator(self, params, c, logger)
  const gray = new GraylistTracker()
  let timer: NodeJS.Timeout | undefined
  let grayTimer: NodeJS.Timeout | undefined

  const onRecord = (evt: Event): void => {
    trust.add((evt as CustomEvent<RecordEventDetail>).detail.record.body)
  }

  const weight = (author: string): number => trust.weight(author)

  function summary (): TrustSummary {
    trust.fresh()
    const totals = c.peerGuard?.totals() ?? { rateLimited: 0, invalid: 0, authorLimited: 0 }
    return { ...countStatuses(trust.table), graylisted: gray.now.size, graylistedEver: gray.ever.size, rateLimited: totals.rateLimited, invalid: totals.invalid, authorLimited: totals.authorLimited, evaluatedAt: trust.evaluatedAt }
  }

  /** GET /trust: the whole table and the peers that misbehaved. */
  function trustView (): Record<string, unknown> {
    trust.fresh()
    return {
      self,
      summary: summary(),
      params,
      /** the weight of an author not in the table yet */
      unknownWeight: trust.unknownWeight,
      authors: [...trust.table.values()].sort((a, b) => b.weight - a.weight || (a.author < b.author ? -1 : 1)),
      peers: c.peerGuard?.peers().slice(0, 1000) ?? [],
      graylisted: gray.list()
    }
  }

  const svc: TrustService = {
    async start () {
      await trust.load()
      c.events.addEventListener('record', onRecord)
      await trust.evaluate()
      // proven authors (and this node) are exempt from the per-author gossip budget; read from the
      // last evaluation, not recomputed per message (this runs for every gossiped record)
      c.peerGuard?.setAuthorExempt(author => author === self || trust.table.get(author)?.status === 'proven')
      timer = setInterval(() => {
        if (trust.stale()) trust.evaluate().catch(err => { logger.error('trust evaluation failed: %s', errorMessage(err)) })
      }, intervalMs)
      timer.unref()
      grayTimer = setInterval(() => { gray.check(c.network.libp2p, c.peerGuard) }, 1000)
      grayTimer.unref()
      c.api.statusContributors.set('trust', summary)
      c.api.route('GET', '/trust', async () => ({ json: trustView() }))
    },
    async stop () {
      c.peerGuard?.setAuthorExempt(() => false)
      c.events.removeEventListener('record', onRecord)
      if (timer != null) clearInterval(timer)
      if (grayTimer != null) clearInterval(grayTimer)
      await trust.settled()
    },
    weight,
    weights () {
      const out: Record<string, number> = {}
      for (const a of trust.index.authors()) out[a] = weight(a)
      return out
    },
    table: () => { trust.fresh(); return [...trust.table.values()] },
    get: (a) => { trust.fresh(); return trust.table.get(a) },
    spotChecks: (modelId, hardwareId, k = 8) => { trust.fresh(); return pickSpotChecks(trust.index, self, hardwareId, trust.table, Infinity).filter(x => x.modelId === modelId).slice(0, k) },
    summary,
    evaluate: async () => { await trust.evaluate() },
    graylisted: () => [...gray.now]
  }
  return svc
}
