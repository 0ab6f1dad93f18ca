import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { ControlApi } from '../contracts/api.js'
import { OBJECTIVES, type Objective } from '../contracts/objective.js'
import type { RecordEventDetail, RecordEvents } from '../contracts/records.js'
import type { Startable } from '../contracts/service.js'
import type { RecordStore } from '../store/types.js'
import type { MetaModel, SelectTask } from '../meta/selector.js'
import { selectMethod } from '../meta/selector.js'
import { WindowLimiter } from '../net/limits.js'
import { VOTES_TOPIC } from '../net/types.js'
import type { RecordBody } from '../records/types.js'
import { Counters } from '../util/counters.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { log, type Logger } from '../util/log.js'
import { ClassIndex } from './class-index.js'
import { chunkClasses, signVote, verifyVoteWire, voteToWire } from './codec.js'
import { VoteErrorCode } from './errors.js'
import { MAX_RANKING, MAX_VOTE_AGE_MS } from './limits.js'
import { measuredByMethod } from './objective.js'
import { ReputationBook, type ReputationParams, type ReputationUpdate } from './reputation.js'
import { tally, type CommitteeRanking } from './tally.js'
import { baseOfKey, classKeyOf, parseTaskClassKey } from './task-class.js'
import { VOTE_VERSION, type ClassVote, type VoteBody } from './types.js'
import { VoteBook } from './votebook.js'
import { DEFAULT_COLD_OWN_RECORDS, isCold } from './advisor.js'

/**
 * The vote service (docs/VOTES.md): every `vote.intervalMs` it signs and gossips this node's
 * ranking per task class it has evidence on (from its meta-model), validates others' votes on
 * `/swarmtune/votes/1` (signature, schema → Accept / Reject / Ignore, rejections counted),
 * keeps the latest ballot per author per class (persisted with `putMeta`), scores authors
 * against this node's own later measurements (reputation), and tallies the committee.
 * Route: `GET /committee[?key=K]` → tally per class and author weights.
 */
export const VOTEBOOK_KEY = 'vote:book'
export const REPUTATION_KEY = 'vote:reputation'
export const VOTE_SEQ_KEY = 'vote:seq'

/** What the vote service needs from the meta-model service (src/meta/service.ts). */
export interface MetaSource { current: () => MetaModel | null }

export interface VoteComponents {
  peerId: PeerId
  privateKey: PrivateKey
  store: RecordStore
  network: { libp2p: Libp2p<{ pubsub: GossipSub }> }
  api: ControlApi
  events: RecordEvents
  rejections: Counters
  /** the meta-model whose rankings this node votes (src/meta/service.ts) */
  meta?: MetaSource
  /** issue #7: reputation × author trust (src/trust), so Sybil voters share the unproven cap */
  trust?: { weight: (author: string) => number }
}

/** The `vote` section of the config. */
export interface VoteConfig { intervalMs: number, coldOwnRecords?: number }

export interface VoteServiceInit {
  config: VoteConfig
  intervalMs?: number
  /** own measurements per class below which the node is cold there (docs/VOTES.md) */
  coldOwnRecords?: number
  reputation?: Partial<ReputationParams>
  /** objectives this node votes on */
  objectives?: Objective[]
  /** most classes in one publish round (the ones with most records first) */
  maxClassesPerRound?: number
  /** votes accepted per relaying peer per second (above → Ignore) */
  votesPerPeerPerSecond?: number
}

export interface CommitteeView {
  key: string
  ranking: CommitteeRanking['ranking']
  voters: number
  totalWeight: number
  ballots: CommitteeRanking['ballots']
}

export interface WeightView {
  author: string
  weight: number
  updates: number
  last?: number
  self: boolean
}

export interface VoteService extends Startable {
  /** the committee tally of one class key (undefined when nobody voted on it) */
  committee: (key: string) => CommitteeRanking | undefined
  /** tallies (all classes or one) and the weights of every author seen */
  view: (key?: string) => { self: string, coldOwnRecords: number, classes: CommitteeView[], weights: WeightView[] }
  weights: () => WeightView[]
  readonly index: ClassIndex
  /** own successful measurements in a class (by full key or base) */
  ownEvidence: (keyOrBase: string) => { records: number, methods: number }
  isCold: (keyOrBase: string) => boolean
  readonly coldOwnRecords: number
  /** publish this node's votes now; resolves to the number of classes voted on */
  publishNow: () => Promise<number>
  /** process pending own measurements now (reputation) */
  flushReputation: () => ReputationUpdate[]
  stats: () => Record<string, number>
  /** increases whenever a ballot or a weight changes (cache invalidation) */
  version: () => number
}

function predictedScore (objective: Objective, p: { speedup: number | null, wallMs: number | null, ttftMs: number | null, cost: number | null }): number {
  let v: number | null = null
  switch (objective) {
    case 'throughput': v = p.speedup; break
    case 'latency': v = p.ttftMs != null && p.ttftMs > 0 ? 1000 / p.ttftMs : null; break
    case 'cost': v = p.cost != null && p.cost > 0 ? 1 / p.cost : p.wallMs != null && p.wallMs > 0 ? 1000 / p.wallMs : null; break
  }
  return v != null && Number.isFinite(v) ? Math.round(v * 1e6) / 1e6 : 0
}

/** What the pieces of the service below share; the books are replaced from the store at start. */
interface VoteState {
  readonly self: string
  book: VoteBook
  rep: ReputationBook
  /** the last sequence number this node signed */
  seq: number
  readonly index: ClassIndex
  readonly st: Counters
  readonly logger: Logger
  /** a ballot or a weight changed: bump the version, persist soon */
  readonly changed: () => void
}

// ---------------------------------------------------------------- gossip

/** The gossipsub validator's verdict on one relayed vote (counted in `st`; rejections by code). */
async function validateVote (state: VoteState, limiter: WindowLimiter, rejections: Counters, peer: PeerId, msg: Message): Promise<TopicValidatorResult> {
  const { st, logger } = state
  const from = peer.toString()
  st.inc('received')
  if (!limiter.take(from)) {
    st.inc('rateLimited')
    return TopicValidatorResult.Ignore
  }
  try {
    const vote = await verifyVoteWire(msg.data)
    if (vote.body.author === state.self) return TopicValidatorResult.Ignore
    const res = state.book.add(vote.body)
    if (res.updated.length === 0) {
      st.inc('stale')
      return TopicValidatorResult.Ignore
    }
    st.inc('accepted')
    state.changed()
    return TopicValidatorResult.Accept
  } catch (err) {
    const code = errorCode(err)
    if (code === VoteErrorCode.STALE || code === VoteErrorCode.FUTURE_TIMESTAMP) {
      // an honest vote delayed or from a skewed clock: drop without penalty
      st.inc('ignored')
      return TopicValidatorResult.Ignore
    }
    if (code.startsWith('E_VOTE_')) {
      rejections.inc(code)
      st.inc('rejected')
      logger('rejected vote relayed by %s: %s %s', from, code, errorMessage(err))
      return TopicValidatorResult.Reject
    }
    logger.error('vote validation failed: %s', errorMessage(err))
    return TopicValidatorResult.Ignore
  }
}

// ---------------------------------------------------------------- publishing

/** This node's ballots: its model's ranking for each class it has evidence on (most records first). */
function ownBallots (state: VoteState, model: MetaModel, objectives: readonly Objective[], maxClasses: number): ClassVote[] {
  const { index } = state
  const entries = index.entries().sort((a, b) => b.records - a.records || (a.base < b.base ? -1 : 1)).slice(0, maxClasses)
  const out: ClassVote[] = []
  for (const e of entries) {
    const task: SelectTask = {
      hardware: { ...e.task.hardware, gpus: e.task.hardware.gpus },
      model: e.task.model,
      workload: { features: e.task.workload.features }
    }
    for (const objective of objectives) {
      let sel
      try {
        sel = selectMethod(model, task, { objective, pricePerHour: e.task.hardware.pricePerHour })
      } catch (err) {
        state.st.inc('voteSelectErrors')
        state.logger('cannot rank %s: %s', e.base, errorMessage(err))
        continue
      }
      if (sel.coldStart) continue
      const ranking = sel.ranking.filter(r => r.feasible).slice(0, MAX_RANKING).map(r => ({ method: r.method, score: predictedScore(objective, r.predicted) }))
      if (ranking.length === 0) continue
      const ev = index.evidence(e.base)
      out.push({ key: classKeyOf(e.base, objective), ranking, evidence: { records: ev.records, authors: ev.authors } })
    }
  }
  return out
}

/** Sign, keep and gossip `classes` in wire-sized chunks, one sequence number each; a failed publish is counted, not thrown. */
async function publishBallots (state: VoteState, privateKey: PrivateKey, pubsub: GossipSub | undefined, classes: ClassVote[], snapshot: string): Promise<void> {
  for (const chunk of chunkClasses(classes)) {
    state.seq++
    const body: VoteBody = { v: VOTE_VERSION, author: state.self, seq: state.seq, timestamp: Date.now(), snapshot, classes: chunk }
    const vote = await signVote(privateKey, body)
    state.book.add(body)
    try {
      await pubsub?.publish(VOTES_TOPIC, voteToWire(vote))
      state.st.inc('published')
    } catch (err) {
      state.st.inc('publishErrors')
      state.logger('publishing a vote failed: %s', errorMessage(err))
    }
  }
}

// ---------------------------------------------------------------- reputation

/** Score every other author's ballot in the classes (bases) where this node measured something new. */
function scoreBallots (state: VoteState, bases: Iterable<string>): ReputationUpdate[] {
  const updates: ReputationUpdate[] = []
  for (const base of bases) {
    const entry = state.index.get(base)
    if (entry == null || entry.own.length === 0) continue
    const lastOwn = Math.max(...entry.own.map(o => o.timestamp))
    for (const objective of OBJECTIVES) {
      const key = classKeyOf(base, objective)
      const measured = measuredByMethod(entry.own, objective)
      if (measured.size < 2) continue
      for (const b of state.book.ballots(key)) {
        // only ballots cast before the measurement are predictions of it
        if (b.author === state.self || b.timestamp > lastOwn) continue
        const u = state.rep.observe(b.author, key, { seq: b.seq, ranking: b.ranking.map(e => e.method) }, measured, entry.ownTotal)
        if (u != null) updates.push(u)
      }
    }
  }
  return updates
}

/** A record this node measured itself (benchmark or serving, ok): the evidence reputation is scored against. */
function isOwnMeasurement (self: string, body: RecordBody): boolean {
  return body.author === self && body.result.ok && (body.source === 'benchmark' || body.source === 'serving')
}

// ---------------------------------------------------------------- persistence

async function loadBooks (state: VoteState, store: RecordStore, reputation: Partial<ReputationParams> | undefined): Promise<void> {
  state.book = VoteBook.fromJSON(await store.getMeta(VOTEBOOK_KEY))
  state.book.prune(Date.now() - MAX_VOTE_AGE_MS)
  state.rep = ReputationBook.fromJSON(await store.getMeta(REPUTATION_KEY), reputation)
  state.seq = Math.max(state.seq, (await store.getMeta<number>(VOTE_SEQ_KEY)) ?? 0)
}

async function persistBooks (state: VoteState, store: RecordStore): Promise<void> {
  try {
    await store.putMeta(VOTEBOOK_KEY, state.book.toJSON())
    await store.putMeta(REPUTATION_KEY, state.rep.toJSON())
  } catch (err) {
    state.logger.error('persisting votes failed: %s', errorMessage(err))
  }
}

// ---------------------------------------------------------------- views

/**
 * The committee as this node sees it: reputation × trust weights per author and the tally per
 * class, cached until `changed()` (a ballot or a weight changed).
 */
class Committee {
  /** increases whenever a ballot or a weight changes (cache invalidation) */
  version = 0
  private readonly cache = new Map<string, { version: number, ranking: CommitteeRanking }>()
  private readonly state: VoteState
  private readonly trustOf: (author: string) => number
  private readonly coldOwnRecords: number

  constructor (state: VoteState, trustOf: (author: string) => number, coldOwnRecords: number) {
    this.state = state
    this.trustOf = trustOf
    this.coldOwnRecords = coldOwnRecords
  }

  changed (): void {
    this.version++
  }

  weightOf (author: string): number {
    return author === this.state.self ? 1 : this.state.rep.weight(author) * this.trustOf(author)
  }

  tally (key: string): CommitteeRanking | undefined {
    const hit = this.cache.get(key)
    if (hit != null && hit.version === this.version) return hit.ranking
    const ballots = this.state.book.ballots(key)
    if (ballots.length === 0) return undefined
    const ranking = tally(key, ballots, a => this.weightOf(a))
    if (this.cache.size > 10_000) this.cache.clear()
    this.cache.set(key, { version: this.version, ranking })
    return ranking
  }

  weights (): WeightView[] {
    const { book, rep, self } = this.state
    const authors = new Set([...book.authors(), ...rep.entries().map(([a]) => a)])
    return [...authors].sort().map(a => {
      const r = rep.get(a)
      return { author: a, weight: this.weightOf(a), updates: r?.updates ?? 0, ...(r?.last != null ? { last: r.last } : {}), self: a === self }
    })
  }

  view (key?: string): ReturnType<VoteService['view']> {
    const classes: CommitteeView[] = []
    for (const k of key != null ? [key] : this.state.book.keys()) {
      const c = this.tally(k)
      if (c != null) classes.push({ key: c.key, ranking: c.ranking, voters: c.voters, totalWeight: c.totalWeight, ballots: c.ballots })
    }
    return { self: this.state.self, coldOwnRecords: this.coldOwnRecords, classes, weights: this.weights() }
  }
}

/** A timer that coalesces a burst of `schedule()` calls into one run of `fn`, `ms` after the first. */
class Coalescer {
  private timer: NodeJS.Timeout | undefined
  constructor (private readonly ms: number, private readonly fn: () => void) {}

  schedule (): void {
    if (this.timer != null) return
    this.timer = setTimeout(() => { this.timer = undefined; this.fn() }, this.ms)
    this.timer.unref()
  }

  cancel (): void {
    if (this.timer != null) clearTimeout(this.timer)
    this.timer = undefined
  }
}

function registerRoutes (api: ControlApi, view: VoteService['view'], stats: VoteService['stats']): void {
  api.route('GET', '/committee', (req) => {
    const key = req.query.get('key') ?? undefined
    if (key != null && parseTaskClassKey(key) == null) return { status: 400, json: { error: { code: 'E_BAD_KEY', message: 'key must be a task class key (docs/VOTES.md)' } } }
    return { json: view(key) }
  })
  api.statusContributors.set('votes', stats)
}

export function createVoteService (init: VoteServiceInit, components: VoteComponents): VoteService {
  const { store, network, api, events, rejections, privateKey } = components
  const self = components.peerId.toString()
  const intervalMs = init.intervalMs ?? init.config.intervalMs
  const coldOwnRecords = init.coldOwnRecords ?? init.config.coldOwnRecords ?? DEFAULT_COLD_OWN_RECORDS
  const objectives = init.objectives ?? ['throughput', 'latency']
  const maxClasses = init.maxClassesPerRound ?? 256
  const limiter = new WindowLimiter(init.votesPerPeerPerSecond ?? 50, 1000)
  const state: VoteState = {
    self,
    book: new VoteBook(),
    rep: new ReputationBook(init.reputation),
    seq: 0,
    index: new ClassIndex({ self }),
    st: new Counters(),
    logger: log('vote'),
    changed
  }
  const { index, st, logger } = state
  const committee = new Committee(state, author => components.trust?.weight(author) ?? 1, coldOwnRecords)
  const persistSoon = new Coalescer(2000, () => { void persistBooks(state, store) })
  // own records come in bursts (a benchmark sweep): score once per burst
  const flushSoon = new Coalescer(250, () => { flushReputation() })
  const pendingOwn = new Set<string>()
  let timer: NodeJS.Timeout | undefined
  let pubsub: GossipSub | undefined
  let stopped = true
  /** ids that arrived by event while the start-up scan runs (so the scan does not count them twice) */
  let scanning: Set<string> | undefined

  const stats = (): Record<string, number> => ({ ...st.toJSON(), authors: state.book.authors().length, classes: state.book.keys().length })
  const ownEvidence = (keyOrBase: string): { records: number, methods: number } => index.ownEvidence(baseOfKey(keyOrBase))
  const view = (key?: string): ReturnType<VoteService['view']> => committee.view(key)

  function changed (): void {
    committee.changed()
    if (!stopped) persistSoon.schedule()
  }

  function flushReputation (): ReputationUpdate[] {
    const updates = scoreBallots(state, pendingOwn)
    pendingOwn.clear()
    if (updates.length > 0) {
      st.inc('reputationUpdates', updates.length)
      changed()
      logger('reputation: %d updates', updates.length)
    }
    return updates
  }

  const onRecord = (evt: Event): void => {
    const { record } = (evt as CustomEvent<RecordEventDetail>).detail
    scanning?.add(record.id)
    const base = index.add(record.body)
    if (base != null && isOwnMeasurement(self, record.body)) {
      pendingOwn.add(base)
      if (!stopped) flushSoon.schedule()
    }
  }

  async function publishNow (): Promise<number> {
    const model = components.meta?.current() ?? null
    if (model == null) return 0
    const classes = ownBallots(state, model, objectives, maxClasses)
    if (classes.length === 0) return 0
    await publishBallots(state, privateKey, pubsub, classes, model.trainingSetHash.slice(0, 16))
    await store.putMeta(VOTE_SEQ_KEY, state.seq)
    changed()
    return classes.length
  }

  return {
    index,
    coldOwnRecords,
    committee: key => committee.tally(key),
    view,
    weights: () => committee.weights(),
    ownEvidence,
    isCold: (k) => isCold(ownEvidence(k), coldOwnRecords),
    publishNow,
    flushReputation,
    stats,
    version: () => committee.version,
    async start () {
      stopped = false
      await loadBooks(state, store, init.reputation)
      scanning = new Set()
      events.addEventListener('record', onRecord)
      for await (const r of store.all()) if (!scanning.has(r.id)) index.add(r.body as RecordBody)
      scanning = undefined
      pubsub = network.libp2p.services.pubsub
      // a validator must RETURN Reject: gossipsub maps a thrown error to Ignore
      pubsub.topicValidators.set(VOTES_TOPIC, async (peer, msg) => await validateVote(state, limiter, rejections, peer, msg))
      pubsub.subscribe(VOTES_TOPIC)
      timer = setInterval(() => {
        publishNow().catch(err => { logger.error('vote round failed: %s', errorMessage(err)) })
      }, intervalMs)
      timer.unref()
      registerRoutes(api, view, stats)
    },
    async stop () {
      stopped = true
      events.removeEventListener('record', onRecord)
      if (timer != null) clearInterval(timer)
      timer = undefined
      flushSoon.cancel()
      persistSoon.cancel()
      try {
        pubsub?.unsubscribe(VOTES_TOPIC)
        pubsub?.topicValidators.delete(VOTES_TOPIC)
      } catch {}
      await persistBooks(state, store)
    }
  }
}
