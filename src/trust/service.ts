import type { GossipSub } from '@libp2p/gossipsub'
import type { SignedRecord } from '../records/types.js'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { ControlApi } from '../contracts/api.js'
import type { RecordEventDetail, RecordEvents } from '../contracts/records.js'
import type { Startable } from '../contracts/service.js'
import type { RecordStore } from '../store/types.js'
import { errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import type { PeerGuard } from '../net/guard.js'
import { SCORE_THRESHOLDS } from '../net/libp2p.js'
import { pickSpotChecks, type SpotCheckCell } from './spotcheck.js'
import { ClaimIndex, computeTrust, DEFAULT_TRUST_PARAMS, spotCheckEvidence, unknownAuthorWeight, type AuthorTrust, type TrustParams } from './trust.js'

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
export interface TrustConfig {
  evaluateIntervalMs?: number
  unprovenCap?: number
  spotChecks?: boolean
}

export interface TrustServiceInit {
  config?: TrustConfig
  params?: Partial<TrustParams>
}

export function createTrustService (init: TrustServiceInit, c: TrustComponents): TrustService {
  const logger = log('trust')
  const cfg = init.config ?? {}
  const params: TrustParams = { ...DEFAULT_TRUST_PARAMS, ...(cfg.unprovenCap != null ? { unprovenCap: cfg.unprovenCap } : {}), ...init.params }
  const self = c.peerId.toString()
  const intervalMs = cfg.evaluateIntervalMs ?? 5000
  let index = new ClaimIndex()
  let table = new Map<string, AuthorTrust>()
  let unknownWeight = unknownAuthorWeight(table, params)
  let dirty = true
  /** records indexed, and how many the last full (async) evaluation had seen */
  let seen = 0
  let seenAtEvaluation = -1
  let evaluatedAt = 0
  let lastViolations = ''
  let timer: NodeJS.Timeout | undefined
  let grayTimer: NodeJS.Timeout | undefined
  let evaluating: Promise<void> | undefined
  const grayNow = new Set<string>()
  const grayEver = new Map<string, number>()

  const onRecord = (evt: Event): void => {
    const { record } = (evt as CustomEvent<RecordEventDetail>).detail
    index.add(record.body)
    dirty = true
    seen++
  }

  function violationsKey (): string {
    const t = c.peerGuard?.totals()
    return t == null ? '' : `${t.invalid}/${Math.floor(t.rateLimited / 100)}`
  }

  /** equivocations per author, from the store's evidence (refreshed by the async evaluation) */
  let equivocations = new Map<string, number>()

  /**
   * Recompute the table from the index and the cached evidence (sync, pure). Called by every
   * reader when records arrived since the last evaluation: an author whose claims arrived a
   * moment ago must already share the unproven cap (or be distrusted), never get a default weight.
   */
  function recompute (): void {
    const evidence = spotCheckEvidence(index, self, params)
    for (const [author, n] of equivocations) {
      let e = evidence.get(author)
      if (e == null) evidence.set(author, e = { agree: 0, disagree: 0, classChecks: 0, equivocations: 0, violations: 0, cells: 0 })
      e.equivocations = n
    }
    // a record's author signs with the same key as its peer id: violations of a peer count against that author
    for (const p of c.peerGuard?.peers() ?? []) {
      const e = evidence.get(p.peer)
      if (e != null) e.violations = p.invalid + Math.floor(p.rateLimited / 100)
    }
    if (!evidence.has(self)) evidence.set(self, { agree: 0, disagree: 0, classChecks: 0, equivocations: 0, violations: 0, cells: 0 })
    table = computeTrust(evidence, self, params)
    unknownWeight = unknownAuthorWeight(table, params)
    evaluatedAt = Date.now()
    dirty = false
  }

  function fresh (): void {
    if (dirty) recompute()
  }

  async function evaluateInner (): Promise<void> {
    const eq = new Map<string, number>()
    for (const ev of await c.store.evidence()) eq.set(ev.author, (eq.get(ev.author) ?? 0) + 1)
    equivocations = eq
    recompute()
    try {
      await c.store.putMeta(TRUST_KEY, { evaluatedAt, params, authors: [...table.values()] })
    } catch (err) {
      logger.error('persisting trust failed: %s', errorMessage(err))
    }
  }

  async function evaluate (): Promise<void> {
    if (evaluating != null) { await evaluating; }
    seenAtEvaluation = seen
    lastViolations = violationsKey()
    evaluating = evaluateInner().finally(() => { evaluating = undefined })
    await evaluating
  }

  function checkGraylist (): void {
    const ps = (c.network.libp2p.services as { pubsub?: GossipSub & { getScore: (p: string) => number } }).pubsub
    if (ps == null) return
    grayNow.clear()
    for (const p of ps.getPeers()) {
      const id = p.toString()
      if (ps.getScore(id) < GRAYLIST_THRESHOLD) {
        grayNow.add(id)
        if (!grayEver.has(id)) grayEver.set(id, Date.now())
      }
    }
    // a peer the guard banned at the graylist level is disconnected, so gossipsub may no longer
    // list it: count it from the guard, with the time it crossed
    for (const p of c.peerGuard?.peers() ?? []) {
      if (!p.banned) continue
      grayNow.add(p.peer)
      if (!grayEver.has(p.peer)) grayEver.set(p.peer, p.bannedAt ?? Date.now())
    }
  }

  const weight = (author: string): number => { fresh(); return table.get(author)?.weight ?? (author === self ? 1 : unknownWeight) }

  function summary (): TrustSummary {
    fresh()
    const s = { authors: table.size, proven: 0, unproven: 0, distrusted: 0, equivocators: 0 }
    for (const t of table.values()) {
      if (t.status === 'proven') s.proven++
      else if (t.status === 'unproven') s.unproven++
      else if (t.status === 'distrusted') s.distrusted++
      else if (t.status === 'equivocator') s.equivocators++
    }
    const totals = c.peerGuard?.totals() ?? { rateLimited: 0, invalid: 0, authorLimited: 0 }
    return { ...s, graylisted: grayNow.size, graylistedEver: grayEver.size, rateLimited: totals.rateLimited, invalid: totals.invalid, authorLimited: totals.authorLimited, evaluatedAt }
  }

  const svc: TrustService = {
    async start () {
      index = new ClaimIndex()
      for await (const r of c.store.all() as AsyncIterable<SignedRecord>) index.add(r.body)
      c.events.addEventListener('record', onRecord)
      await evaluate()
      // proven authors (and this node) are exempt from the per-author gossip budget; read from the
      // last evaluation, not recomputed per message (this runs for every gossiped record)
      c.peerGuard?.setAuthorExempt(author => author === self || table.get(author)?.status === 'proven')
      timer = setInterval(() => {
        if (seen !== seenAtEvaluation || violationsKey() !== lastViolations) evaluate().catch(err => { logger.error('trust evaluation failed: %s', errorMessage(err)) })
      }, intervalMs)
      timer.unref()
      grayTimer = setInterval(checkGraylist, 1000)
      grayTimer.unref()
      c.api.statusContributors.set('trust', summary)
      c.api.route('GET', '/trust', async () => {
        fresh()
        return { json: {
          self,
          summary: summary(),
          params,
          /** the weight of an author not in the table yet */
          unknownWeight,
          authors: [...table.values()].sort((a, b) => b.weight - a.weight || (a.author < b.author ? -1 : 1)),
          peers: c.peerGuard?.peers().slice(0, 1000) ?? [],
          graylisted: [...grayEver].map(([peer, since]) => ({ peer, since, now: grayNow.has(peer) }))
        } }
      })
    },
    async stop () {
      c.peerGuard?.setAuthorExempt(() => false)
      c.events.removeEventListener('record', onRecord)
      if (timer != null) clearInterval(timer)
      if (grayTimer != null) clearInterval(grayTimer)
      try { await evaluating } catch {}
    },
    weight,
    weights () {
      const out: Record<string, number> = {}
      for (const a of index.authors()) out[a] = weight(a)
      return out
    },
    table: () => { fresh(); return [...table.values()] },
    get: (a) => { fresh(); return table.get(a) },
    spotChecks: (modelId, hardwareId, k = 8) => { fresh(); return pickSpotChecks(index, self, hardwareId, table, Infinity).filter(x => x.modelId === modelId).slice(0, k) },
    summary,
    evaluate,
    graylisted: () => [...grayNow]
  }
  return svc
}
