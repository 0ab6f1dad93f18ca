import { Level } from 'level'
import type { AbstractSublevel } from 'abstract-level'
import { decodeEnvelope } from '../records/codec.js'
import { leafOf, toWire } from '../records/sign.js'
import { decodeUtf8 } from '../records/canonical.js'
import { LOG_HEAD_REACH, decodeLogHead, headsToKeep, type LogHead } from '../records/log-head.js'
import { EMPTY_FRONTIER, appendLeafInPlace, decodeFrontier, encodeFrontier, leafHash, type Frontier } from '../records/merkle.js'
import type { RecordBody, SignedRecord } from '../records/types.js'
import { SwarmtuneError } from '../util/errors.js'
import { log } from '../util/log.js'
import type {
  EquivocationEvidence, PutOptions, PutStatus, RecordPage, RecordQuery, RecordStore, StoreCounts, StoreHealth, UncheckedMark
} from './types.js'

/**
 * The federated history on LevelDB (classic-level). One database, one sublevel per concern:
 *
 *   rec   id → wire envelope bytes (the record exactly as it travels)
 *   log   author!seq(16 digits) → id, or "-id" once retention evicted it (a tombstone keeps the
 *         author's head where it was, so sync does not fetch evicted records again)
 *   idx   modelId!hardwareId!ord → id          (query by model / hardware)
 *   ord   ord(16 digits) → id, "+id" for own records (insertion order: query order and cursors;
 *         retention evicts from the front, skipping own records)
 *   fifo  (layout 1 only: ord → id of non-own records; migrated into ord's "+" marks at start)
 *   auth  author → "head,max"                  (head cache, loaded at start)
 *   evid  author!seq!id → wire                 (equivocation evidence: every conflicting body)
 *   eid   id → author!seq                      (evidence lookup by id)
 *   meta  key → JSON                           (snapshots, trust, votes, ...; plus the counters and
 *         the layout version, LAYOUT)
 *   tag   tag → id                             (PutOptions.tags: import line keys, same batch as the record)
 *   mkl   author → "length:hex,…" or "?"       (Merkle frontier of the log 1..length, sync 2.0.0; "?"
 *         when unknowable: a record of 1..head was evicted before the head reached it)
 *   lhd   author!length(16 digits) → log head  (signed log heads, checked before they are stored;
 *         pruned on write to the heads a client needs, headsToKeep())
 *   lhev  author!length!root → log head        (heads kept as evidence of equivocation)
 *   unck  author!seq!id → ""                    (records taken in through a log head whose own
 *         signature is not checked yet, sync 2.0.0; written before the records, cleared once checked)
 *
 * A failed write (ENOSPC, I/O error) leaves LevelDB refusing every later write, so the store
 * marks itself unhealthy, answers E_STORE_FULL / E_STORE_IO, and before the next write (at most
 * once per reopenIntervalMs) closes and reopens the database: writes resume once space is back.
 * A failed batch changed nothing (atomic), and in-memory counters move only after success.
 *
 * Every put is one atomic batch that also rewrites the counters, so counts survive crashes
 * consistently. Writes queue up and one writer drains them in batches; reads are not serialized.
 *
 * Merkle frontiers are kept current in memory at each author's contiguous head; the stored one
 * (`mkl`, with its length) is a cache that may lag: it is written in the batch of a write that
 * takes the author FRONTIER_PERSIST_EVERY records past the stored length, with the batch after
 * FRONTIER_PERSIST_MS of lag, and at stop. Every frontier written covers only records of that
 * batch or of earlier ones (LevelDB applies batches in order), so a stored frontier is never
 * ahead of the stored log; start-up extends a lagging one from the log (after a crash, kill -9).
 */
export interface RecordStoreInit {
  /** LevelDB directory */
  path: string
  /** retention limit; own records never count towards eviction */
  maxRecords: number
  /** this node's peer id: its records are own even when they come back through sync */
  ownAuthor?: string
  /** named in the "in use" error (defaults to path) */
  dataDir?: string
  /** least time between two reopens of an unhealthy store (default 1000 ms) */
  reopenIntervalMs?: number
  /** most time a stored Merkle frontier lags the in-memory one (default FRONTIER_PERSIST_MS) */
  frontierPersistMs?: number
  /**
   * LevelDB's memtable in MiB (default DEFAULT_WRITE_BUFFER_MB; LevelDB's own is 4): a larger one
   * flushes and compacts less often per record written, at the cost of that much more memory
   * while records arrive and a longer log replay on open after a crash
   */
  writeBufferMb?: number
  /** test hook: called before each write; an error it returns fails that write as LevelDB would */
  writeFault?: () => Error | undefined
}

/**
 * The memtable size of a store (MiB). With LevelDB's 4 MiB, a catch-up of 50k records spent 26-32 µs
 * of CPU per record on LevelDB's compaction thread, 11 with 32 MiB; paged writes 0.9x CPU
 * (docs/BENCHMARKS.md § "LevelDB's write buffer").
 */
export const DEFAULT_WRITE_BUFFER_MB = 32

/** A write the store could not make: E_STORE_FULL (disk full) or E_STORE_IO, naming the data dir. */
export class StoreWriteError extends SwarmtuneError {}

function causes (err: unknown): string {
  const parts: string[] = []
  for (let e = err as { message?: string, code?: string, cause?: unknown } | undefined, i = 0; e != null && i < 5; e = e.cause as typeof e, i++) {
    parts.push(`${e.code ?? ''} ${e.message ?? String(e)}`)
  }
  return parts.join(' / ')
}

type Db = Level<string, string>
type Sub<V> = AbstractSublevel<Db, string | Buffer | Uint8Array, string, V>

const COUNTS_KEY = '\u0000counts'
const LAYOUT_KEY = '\u0000layout'
/**
 * On-disk layout. 1 (no LAYOUT_KEY): a fifo sublevel beside ord; 2: ord marks own records with
 * "+", no fifo (one put fewer per record). A data dir of layout 1 is migrated at start.
 */
export const LAYOUT = 2
const VIEW = { valueEncoding: 'view' } as const
/** most records coalesced into one LevelDB batch */
const MAX_BATCH_RECORDS = 4096
const MAX_EVICT_PER_BATCH = 4096
/** records of one author between two writes of its stored frontier (one ~900-byte put) */
export const FRONTIER_PERSIST_EVERY = 256
/** most time a stored frontier lags the in-memory one while the store is otherwise idle */
export const FRONTIER_PERSIST_MS = 2000
const pad = (n: number): string => n.toString().padStart(16, '0')
const logKey = (author: string, seq: number): string => `${author}!${pad(seq)}`

interface AuthorState { head: number, max: number }
type Op = { type: 'put', sublevel: Sub<any>, key: string, value: unknown } | { type: 'del', sublevel: Sub<any>, key: string }
interface Persisted { records: number, own: number, equivocations: number, nextOrd: number }

/** Decode a stored envelope without re-verifying: it was verified before it was stored. */
function decodeStored (id: string, wire: Uint8Array): SignedRecord {
  const { signature, bytes } = decodeEnvelope(wire)
  return { id, body: JSON.parse(decodeUtf8(bytes)) as RecordBody, bytes, signature }
}

function encodeCursor (key: string): string { return Buffer.from(key, 'utf8').toString('base64url') }
function decodeCursor (cursor: string): string { return Buffer.from(cursor, 'base64url').toString('utf8') }

class LevelRecordStore implements RecordStore {
  private readonly log = log('store')
  private readonly db: Db
  private readonly rec: Sub<Uint8Array>
  private readonly logs: Sub<string>
  private readonly idx: Sub<string>
  private readonly ord: Sub<string>
  private readonly fifo: Sub<string>
  private readonly auth: Sub<string>
  private readonly evid: Sub<Uint8Array>
  private readonly eid: Sub<string>
  private readonly meta: Sub<unknown>
  private readonly tags: Sub<string>
  private readonly mkl: Sub<string>
  private readonly lhd: Sub<Uint8Array>
  private readonly lhev: Sub<Uint8Array>
  private readonly unck: Sub<string>
  /** authors that may have unchecked records (a superset: forgotten once a look finds none) */
  private uncheckedAuthors = new Set<string>()
  /** write jobs other than record puts (dropping forged records), run by the one writer between batches */
  private readonly jobs: Array<() => Promise<void>> = []
  /** author → frontier at its contiguous head; null = unknowable */
  private frontiers = new Map<string, Frontier | null>()
  /** author → length of its stored frontier (-1: stored as unknowable) */
  private storedFrontiers = new Map<string, number>()
  /** authors whose in-memory frontier is ahead of the stored one */
  private readonly dirtyFrontiers = new Set<string>()
  private frontierTimer?: ReturnType<typeof setTimeout>
  /** the timer fired: the next batch writes every dirty frontier */
  private frontiersDue = false
  private readonly state: StoreHealth = { healthy: true, error: null, writeErrors: 0, recoveries: 0 }
  private failure?: StoreWriteError
  private lastReopen = 0
  private authors = new Map<string, AuthorState>()
  private c: Persisted = { records: 0, own: 0, equivocations: 0, nextOrd: 1 }
  /** last ord key the eviction scan passed: start the next scan after it instead of over deleted keys */
  private evictedUpTo?: string
  private readonly queue: Array<{ records: SignedRecord[], own: boolean, tags?: Array<string | undefined>, resolve: (s: PutStatus[]) => void, reject: (err: unknown) => void }> = []
  private writing = false
  /** the latest flush (stop() waits for it) */
  private flushing: Promise<void> = Promise.resolve()

  constructor (private readonly init: RecordStoreInit) {
    this.db = new Level<string, string>(init.path, { keyEncoding: 'utf8', valueEncoding: 'utf8', writeBufferSize: (init.writeBufferMb ?? DEFAULT_WRITE_BUFFER_MB) * 1024 * 1024 })
    const sub = <V>(name: string, valueEncoding: 'utf8' | 'view' | 'json'): Sub<V> =>
      this.db.sublevel<string, V>(name, { keyEncoding: 'utf8', valueEncoding })
    this.rec = sub('rec', 'view')
    this.logs = sub('log', 'utf8')
    this.idx = sub('idx', 'utf8')
    this.ord = sub('ord', 'utf8')
    this.fifo = sub('fifo', 'utf8')
    this.auth = sub('auth', 'utf8')
    this.evid = sub('evid', 'view')
    this.eid = sub('eid', 'utf8')
    this.meta = sub('meta', 'json')
    this.tags = sub('tag', 'utf8')
    this.mkl = sub('mkl', 'utf8')
    this.lhd = sub('lhd', 'view')
    this.lhev = sub('lhev', 'view')
    this.unck = sub('unck', 'utf8')
  }

  async start (): Promise<void> {
    try {
      await this.db.open()
    } catch (err) {
      const e = err as { code?: string, cause?: { code?: string } }
      if (e.cause?.code === 'LEVEL_LOCKED' || e.code === 'LEVEL_LOCKED') {
        throw new SwarmtuneError('E_DATA_DIR_LOCKED', `data dir ${this.init.dataDir ?? this.init.path} is in use by another swarmtune daemon`, { cause: err })
      }
      throw new SwarmtuneError('E_STORE_OPEN', `cannot open the store at ${this.init.path}: ${(e.cause as Error | undefined)?.message ?? (err as Error).message}`, { cause: err })
    }
    await this.migrateLayout()
    await this.load()
    await this.migrateFrontiers()
    this.log('opened %s: %o', this.init.path, this.c)
  }

  /**
   * Layout 1 → 2: mark own records in ord with "+" (those fifo does not hold), then record the
   * layout, then drop fifo. Each step can be repeated after a crash: a marked entry is not marked
   * again, and fifo is read only while the layout is still 1.
   */
  private async migrateLayout (): Promise<void> {
    const layout = await this.meta.get(LAYOUT_KEY) as number | undefined
    if (layout === LAYOUT) {
      // a crash after the layout was written but before fifo was dropped
      for await (const _ of this.fifo.keys({ limit: 1 })) { await this.fifo.clear(); break }
      return
    }
    if (layout != null && layout > LAYOUT) throw new SwarmtuneError('E_STORE_LAYOUT', `the store at ${this.init.dataDir ?? this.init.path} has layout ${layout}, newer than this release reads (${LAYOUT})`)
    let marked = 0
    let ops: Op[] = []
    for await (const [o, id] of this.ord.iterator()) {
      if (id.startsWith('+') || this.fifo.getSync(o) != null) continue
      ops.push({ type: 'put', sublevel: this.ord, key: o, value: `+${id}` })
      marked++
      if (ops.length >= 4096) { await this.writeBatch(ops, false); ops = [] }
    }
    ops.push({ type: 'put', sublevel: this.meta, key: LAYOUT_KEY, value: LAYOUT })
    await this.writeBatch(ops, true)
    await this.fifo.clear()
    if (marked > 0 || layout != null) this.log('store layout %d → %d: %d own record(s) marked in ord, fifo dropped', layout ?? 1, LAYOUT, marked)
  }

  private async load (): Promise<void> {
    const saved = await this.meta.get(COUNTS_KEY) as Persisted | undefined
    if (saved != null) this.c = saved
    this.authors = new Map()
    for await (const [author, v] of this.auth.iterator()) {
      const [head, max] = v.split(',').map(Number)
      this.authors.set(author, { head, max })
    }
    this.frontiers = new Map()
    this.storedFrontiers = new Map()
    this.dirtyFrontiers.clear()
    for await (const [author, v] of this.mkl.iterator()) {
      const f = v === '?' ? null : decodeFrontier(v)
      // a malformed value is rebuilt from the log (undefined), "?" stays unknowable (null)
      if (f !== undefined) this.frontiers.set(author, f)
      this.storedFrontiers.set(author, f === null ? -1 : f?.length ?? 0)
    }
    this.uncheckedAuthors = new Set()
    for await (const key of this.unck.keys()) this.uncheckedAuthors.add(key.slice(0, key.indexOf('!')))
  }

  /**
   * Bring every author's frontier to its contiguous head: a frontier stored before a crash lags
   * its head and is extended from the log (only the records after it are hashed); a data dir
   * from before sync 2.0.0 has none and is hashed from record 1; one ahead of its head (no
   * release writes that) is rebuilt. An evicted record in the part to hash makes the frontier
   * unknowable ("?"): that author's runs are then verified record by record.
   * Returns the authors whose frontier changed (now dirty).
   */
  private async extendStoredFrontiers (): Promise<string[]> {
    const changed: string[] = []
    let hashed = 0
    for (const [author, st] of this.authors) {
      const stored = this.frontiers.get(author)
      if (stored === null || (stored != null && stored.length === st.head)) continue
      let f: Frontier | null = stored != null && stored.length < st.head ? { length: stored.length, peaks: stored.peaks.slice() } : { length: 0, peaks: [] }
      for await (const [key, id] of this.logs.iterator({ gt: logKey(author, f.length), lte: logKey(author, st.head) })) {
        const wire = id.startsWith('-') ? undefined : this.rec.getSync(id)
        if (wire == null || Number(key.slice(key.lastIndexOf('!') + 1)) !== f.length + 1) { f = null; break }
        appendLeafInPlace(f, leafHash(wire))
        hashed++
      }
      if (f != null && f.length !== st.head) f = null
      this.frontiers.set(author, f)
      this.dirtyFrontiers.add(author)
      changed.push(author)
    }
    if (changed.length > 0) this.log('Merkle frontiers of %d author log(s) brought to their heads (%d records hashed)', changed.length, hashed)
    return changed
  }

  /** At start: extend lagging frontiers and store them at once (one batch), so the next start does not hash again. */
  private async migrateFrontiers (): Promise<void> {
    if ((await this.extendStoredFrontiers()).length === 0) return
    const ops: Op[] = []
    this.frontierOps(ops, [...this.dirtyFrontiers])
    await this.write(async () => { await this.writeBatch(ops, false) })
    this.frontiersWritten(ops)
  }

  /** Puts of the in-memory frontiers of these authors (each covers only records already in a batch). */
  private frontierOps (ops: Op[], authors: Iterable<string>): void {
    for (const author of authors) {
      const f = this.frontiers.get(author)
      if (f === undefined) continue
      ops.push({ type: 'put', sublevel: this.mkl, key: author, value: f == null ? '?' : encodeFrontier(f) })
    }
  }

  /** After the batch holding `ops` is written: note which frontiers are stored now. */
  private frontiersWritten (ops: Op[]): void {
    for (const op of ops) {
      if (op.sublevel !== this.mkl || op.type !== 'put') continue
      const v = op.value as string
      this.storedFrontiers.set(op.key, v === '?' ? -1 : Number(v.slice(0, v.indexOf(':'))))
      this.dirtyFrontiers.delete(op.key)
    }
    if (this.dirtyFrontiers.size === 0) {
      clearTimeout(this.frontierTimer)
      this.frontierTimer = undefined
      this.frontiersDue = false
    }
  }

  /** Lagging frontiers get written with the next batch after FRONTIER_PERSIST_MS, or by a batch of their own when none comes. */
  private scheduleFrontiers (): void {
    if (this.dirtyFrontiers.size === 0 || this.frontierTimer != null) return
    this.frontierTimer = setTimeout(() => {
      this.frontierTimer = undefined
      this.frontiersDue = true
      this.kick()
    }, this.init.frontierPersistMs ?? FRONTIER_PERSIST_MS)
    this.frontierTimer.unref?.()
  }

  /** A batch of only the lagging frontiers (the timer, stop). */
  private async writeDirtyFrontiers (): Promise<void> {
    this.frontiersDue = false
    if (this.dirtyFrontiers.size === 0) return
    await this.recover()
    const ops: Op[] = []
    this.frontierOps(ops, [...this.dirtyFrontiers])
    await this.write(async () => { await this.writeBatch(ops, false) })
    this.frontiersWritten(ops)
  }

  health (): StoreHealth {
    return { ...this.state, error: this.state.error != null ? { ...this.state.error } : null }
  }

  /** Record a failed write and turn it into the error callers see. */
  private failed (err: unknown): StoreWriteError {
    const text = causes(err)
    // EFBIG: a file-size limit or quota, as final as a full disk for the writer
    const full = /ENOSPC|no space left|EFBIG|file too large/i.test(text)
    const dir = this.init.dataDir ?? this.init.path
    const e = new StoreWriteError(full ? 'E_STORE_FULL' : 'E_STORE_IO',
      full ? `the disk holding ${dir} is full; writes resume once space is freed (${(err as Error).message})` : `the store at ${dir} cannot write: ${(err as Error).message}`, { cause: err })
    this.state.healthy = false
    this.state.error = { code: e.code, message: e.message }
    this.state.writeErrors++
    this.failure = e
    this.lastReopen = Date.now()
    this.log.error('write failed: %s', text)
    return e
  }

  /**
   * Before writing to an unhealthy store: reopen it (LevelDB keeps refusing writes after an
   * I/O error until reopened), at most once per interval after a failure; in between, refuse at once.
   */
  private async recover (): Promise<void> {
    if (this.state.healthy) return
    const now = Date.now()
    if (now - this.lastReopen < (this.init.reopenIntervalMs ?? 1000)) throw this.failure!
    this.lastReopen = now
    try {
      await this.db.close()
      await this.db.open()
      // closing the parent closed the sublevels, opening it does not reopen them
      await Promise.all([this.rec, this.logs, this.idx, this.ord, this.fifo, this.auth, this.evid, this.eid, this.meta, this.tags, this.mkl, this.lhd, this.lhev, this.unck].map(async sub => { await sub.open() }))
      await this.load()
      // the reload dropped the in-memory frontiers that were ahead of the stored ones
      await this.extendStoredFrontiers()
    } catch (err) {
      throw this.failed(err)
    }
  }

  /** The one way writes reach LevelDB (after recover()): fault hook, health. */
  private async write (fn: () => Promise<void>): Promise<void> {
    try {
      const fault = this.init.writeFault?.()
      if (fault != null) throw fault
      await fn()
    } catch (err) {
      throw err instanceof StoreWriteError ? err : this.failed(err)
    }
    if (!this.state.healthy) {
      this.state.recoveries++
      this.log('store healthy again after %d failed writes', this.state.writeErrors)
    }
    this.state.healthy = true
    this.state.error = null
  }

  async stop (): Promise<void> {
    await this.flushing
    clearTimeout(this.frontierTimer)
    this.frontierTimer = undefined
    // the stored frontiers catch up, so the next start hashes nothing; if this fails, it does
    if (this.db.status === 'open') await this.writeDirtyFrontiers().catch((err: unknown) => { this.log('storing Merkle frontiers at stop failed: %s', (err as Error)?.message) })
    await this.db.close()
  }

  async put (record: SignedRecord, opts: PutOptions = {}): Promise<PutStatus> {
    const [status] = await this.putMany([record], opts)
    return status
  }

  /**
   * Puts queue up; one writer drains the queue into a single batch per round, so concurrent
   * puts (gossip messages arriving together) share one LevelDB write and one fsync.
   */
  async putMany (records: SignedRecord[], opts: PutOptions = {}): Promise<PutStatus[]> {
    return await new Promise((resolve, reject) => {
      this.queue.push({ records, own: opts.own === true, tags: opts.tags, resolve, reject })
      this.kick()
    })
  }

  private kick (): void {
    if (this.writing) return
    this.writing = true
    this.flushing = this.flush()
  }

  private async flush (): Promise<void> {
    while (this.queue.length > 0 || this.jobs.length > 0 || this.frontiersDue) {
      const job = this.jobs.shift()
      if (job != null) { await job(); continue }
      if (this.queue.length === 0) {
        // nothing else to write: the lagging frontiers get a batch of their own
        await this.writeDirtyFrontiers().catch((err: unknown) => { this.log('storing Merkle frontiers failed: %s', (err as Error)?.message) })
        continue
      }
      let n = 0
      let take = 0
      while (take < this.queue.length && (take === 0 || n + this.queue[take].records.length <= MAX_BATCH_RECORDS)) n += this.queue[take++].records.length
      const group = this.queue.splice(0, take)
      try {
        const statuses = await this.writeRecords(group.flatMap(g => g.records.map((record, i) => ({ record, own: g.own, tag: g.tags?.[i] }))))
        let i = 0
        for (const g of group) g.resolve(statuses.slice(i, i += g.records.length))
      } catch (err) {
        for (const g of group) g.reject(err)
      }
    }
    // cleared in the same tick as the last empty-queue check, so no put is ever stranded
    this.writing = false
  }

  /** The write section (only ever one running): dedupe, evidence, indexes, heads, retention. */
  private async writeRecords (items: Array<{ record: SignedRecord, own: boolean, tag?: string }>): Promise<PutStatus[]> {
    // reopen first if the last write failed: the plan below reads the state a reopen reloads
    await this.recover()
    const ops: Op[] = []
    const put = (sublevel: Sub<any>, key: string, value: unknown): void => { ops.push({ type: 'put', sublevel, key, value }) }
    const statuses: PutStatus[] = []
    const c = { ...this.c }
    const touched = new Map<string, AuthorState>()
    // log keys and evidence ids written earlier in this batch (a batch may hold a conflict)
    const pending = new Map<string, string>()
    const pendingWire = new Map<string, Uint8Array>()
    const pendingRecord = new Map<string, SignedRecord>()
    let durable = false

    for (const { record: r, own: ownFlag, tag } of items) {
      const { author, seq } = r.body
      const lk = logKey(author, seq)
      const known = touched.get(author) ?? this.authors.get(author)
      // past the author's highest seq nothing is stored yet: skip the read (the common case).
      // Reads here are synchronous: cheap (memtable, block cache) and no thread-pool round trip.
      const existing = pending.get(lk) ?? (known != null && seq <= known.max ? this.logs.getSync(lk) : undefined)
      if (existing != null) {
        const knownId = existing.startsWith('-') ? existing.slice(1) : existing
        if (knownId === r.id || pending.has(`eid:${r.id}`) || this.eid.getSync(r.id) != null) {
          statuses.push('duplicate')
          continue
        }
        // Equivocation: one author signed two bodies for one seq. Keep every body as evidence.
        const ek = `${author}!${pad(seq)}`
        const prev = pendingWire.get(knownId) ?? this.rec.getSync(knownId)
        const firstEvidence = this.eid.getSync(knownId) == null && !pending.has(`eid:${knownId}`)
        if (firstEvidence) {
          if (prev != null) put(this.evid, `${ek}!${knownId}`, prev)
          put(this.eid, knownId, ek)
          pending.set(`eid:${knownId}`, ek)
          c.equivocations++
        }
        put(this.evid, `${ek}!${r.id}`, toWire(r))
        put(this.eid, r.id, ek)
        pending.set(`eid:${r.id}`, ek)
        statuses.push('equivocation')
        this.log('equivocation by %s at seq %d: %s vs %s', author, seq, knownId, r.id)
        continue
      }
      const own = ownFlag || author === this.init.ownAuthor
      if (own) durable = true
      const o = pad(c.nextOrd++)
      const wire = toWire(r)
      put(this.rec, r.id, wire)
      pendingWire.set(r.id, wire)
      pendingRecord.set(r.id, r)
      put(this.logs, lk, r.id)
      put(this.idx, `${r.body.model.id}!${r.body.hardware.id}!${o}`, r.id)
      put(this.ord, o, own ? `+${r.id}` : r.id)
      pending.set(lk, r.id)
      if (tag != null) put(this.tags, tag, r.id)
      c.records++
      if (own) c.own++
      const st = { ...(known ?? { head: 0, max: 0 }) }
      st.max = Math.max(st.max, seq)
      if (seq === st.head + 1) {
        // advance over records that arrived earlier, out of order
        st.head = seq
        while (st.head < st.max && (pending.has(logKey(author, st.head + 1)) || this.logs.getSync(logKey(author, st.head + 1)) != null)) st.head++
      }
      touched.set(author, st)
      statuses.push('inserted')
    }

    if (ops.length === 0) return statuses
    // a record of this batch brings its leaf (hashed by the verification worker that checked it)
    const leafOfId = (id: string): Uint8Array | undefined => {
      const r = pendingRecord.get(id)
      if (r != null) return leafOf(r)
      const wire = this.rec.getSync(id)
      return wire == null ? undefined : leafHash(wire)
    }
    const frontiers = this.extendFrontiers(touched, leafOfId, pending)
    const persist = this.frontiersToPersist(frontiers)
    for (const author of persist) {
      const f = frontiers.has(author) ? frontiers.get(author) : this.frontiers.get(author)
      if (f !== undefined) put(this.mkl, author, f == null ? '?' : encodeFrontier(f))
    }
    const evicted = await this.planEviction(c, ops)
    for (const [author, st] of touched) put(this.auth, author, `${st.head},${st.max}`)
    put(this.meta, COUNTS_KEY, c)
    // sublevel ops typed per sublevel; abstract-level routes them by the `sublevel` property
    await this.write(async () => { await this.writeBatch(ops, durable) })
    this.c = c
    for (const [author, st] of touched) this.authors.set(author, st)
    for (const [author, f] of frontiers) {
      this.frontiers.set(author, f)
      this.dirtyFrontiers.add(author)
    }
    this.frontiersWritten(ops)
    this.scheduleFrontiers()
    if (evicted != null) this.evictedUpTo = evicted
    return statuses
  }

  /**
   * The authors whose frontier goes into this batch: those FRONTIER_PERSIST_EVERY records or more
   * past their stored one, those that became unknowable, and every lagging one once the timer fired.
   */
  private frontiersToPersist (frontiers: Map<string, Frontier | null>): Set<string> {
    const out = new Set<string>()
    for (const [author, f] of frontiers) {
      const stored = this.storedFrontiers.get(author) ?? 0
      if (f == null ? stored !== -1 : f.length - stored >= FRONTIER_PERSIST_EVERY) out.add(author)
    }
    if (this.frontiersDue) {
      for (const author of this.dirtyFrontiers) out.add(author)
      this.frontiersDue = false
    }
    return out
  }

  /**
   * One atomic write of `ops` as a chained batch: each op goes to LevelDB's write batch as it is
   * added, which costs about a third of what the array form of batch() does per op (its per-op
   * object spread and property reads dominated a paged write's CPU profile).
   */
  private async writeBatch (ops: Op[], sync: boolean): Promise<void> {
    const batch = this.db.batch()
    try {
      for (const op of ops) {
        // keys carry their sublevel's prefix already: the root's put then skips the per-op sublevel work
        const key = op.sublevel.prefix + op.key
        if (op.type === 'del') batch.del(key)
        else if (op.sublevel === this.meta) batch.put(key, JSON.stringify(op.value))
        else if (typeof op.value === 'string') batch.put(key, op.value)
        else batch.put(key, op.value as any, VIEW)
      }
    } catch (err) {
      await batch.close()
      throw err
    }
    await batch.write({ sync })
  }

  /** The frontiers of the authors whose contiguous head this batch advances (leaves = wire envelopes). */
  private extendFrontiers (touched: Map<string, AuthorState>, leafOfId: (id: string) => Uint8Array | undefined, pending: Map<string, string>): Map<string, Frontier | null> {
    const out = new Map<string, Frontier | null>()
    for (const [author, st] of touched) {
      const before = this.authors.get(author)?.head ?? 0
      if (st.head <= before) continue
      const prev = before === 0 ? EMPTY_FRONTIER : this.frontiers.get(author)
      if (prev == null || prev.length !== before) { out.set(author, null); continue }
      let f: Frontier | null = { length: prev.length, peaks: prev.peaks.slice() }
      for (let seq = before + 1; seq <= st.head && f != null; seq++) {
        const lk = logKey(author, seq)
        const id = pending.get(lk) ?? this.logs.getSync(lk)
        const leaf = id == null || id.startsWith('-') ? undefined : leafOfId(id)
        if (leaf == null) f = null
        else appendLeafInPlace(f, leaf)
      }
      out.set(author, f)
    }
    return out
  }

  /** Append deletes for the oldest non-own records beyond maxRecords; returns the last ord key passed. */
  private async planEviction (c: Persisted, ops: Op[]): Promise<string | undefined> {
    // bounded per write: a lowered maxRecords is caught up over the following writes
    const excess = Math.min(c.records - this.init.maxRecords, MAX_EVICT_PER_BATCH)
    if (excess <= 0) return undefined
    let last: string | undefined
    let evicted = 0
    const range = this.evictedUpTo != null ? { gt: this.evictedUpTo } : {}
    const del = (sublevel: Sub<any>, key: string): void => { ops.push({ type: 'del', sublevel, key }) }
    for await (const [o, id] of this.ord.iterator(range)) {
      if (evicted >= excess) break
      last = o
      // own records are never evicted; the scan passes them once and resumes after them
      if (id.startsWith('+')) continue
      evicted++
      const wire = this.rec.getSync(id)
      if (wire != null) {
        const { body } = decodeStored(id, wire)
        del(this.rec, id)
        del(this.idx, `${body.model.id}!${body.hardware.id}!${o}`)
        ops.push({ type: 'put', sublevel: this.logs, key: logKey(body.author, body.seq), value: `-${id}` })
        c.records--
      }
      del(this.ord, o)
    }
    return last
  }

  async get (id: string): Promise<SignedRecord | undefined> {
    const wire = await this.rec.get(id)
    if (wire != null) return decodeStored(id, wire)
    const ek = await this.eid.get(id)
    if (ek == null) return undefined
    const ev = await this.evid.get(`${ek}!${id}`)
    return ev != null ? decodeStored(id, ev) : undefined
  }

  async has (id: string): Promise<boolean> {
    return (await this.rec.get(id)) != null || (await this.eid.get(id)) != null
  }

  async heads (): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    for (const [a, st] of this.authors) out.set(a, st.head)
    return out
  }

  async bySeq (author: string, afterSeq: number, limit: number): Promise<SignedRecord[]> {
    const out: SignedRecord[] = []
    if (limit <= 0) return out
    for await (const [, id] of this.logs.iterator({ gt: logKey(author, afterSeq), lt: `${author}!~` })) {
      if (id.startsWith('-')) continue
      // synchronous: sync pages read hundreds of records in a row, mostly from the block cache,
      // and a thread-pool round trip per record made the server the slow side of a catch-up
      const wire = this.rec.getSync(id)
      if (wire != null) out.push(decodeStored(id, wire))
      if (out.length >= limit) break
    }
    return out
  }

  /**
   * One range read of the log and one getMany of the envelopes (both off the main thread), not
   * a read per record: a sync server reads runs of up to 4096 records at a time.
   */
  async wiresBySeq (author: string, afterSeq: number, limit: number): Promise<Array<{ seq: number, wire: Uint8Array }>> {
    const out: Array<{ seq: number, wire: Uint8Array }> = []
    let after = logKey(author, afterSeq)
    while (out.length < limit) {
      const want = limit - out.length
      const entries = await this.logs.iterator({ gt: after, lt: `${author}!~`, limit: want }).all()
      const live = entries.filter(([, id]) => !id.startsWith('-'))
      const wires = live.length > 0 ? await this.rec.getMany(live.map(([, id]) => id)) : []
      live.forEach(([key], i) => {
        const wire = wires[i]
        if (wire != null) out.push({ seq: Number(key.slice(key.lastIndexOf('!') + 1)), wire })
      })
      // tombstones (evicted records) do not count: read on past them
      if (entries.length < want) break
      after = entries[entries.length - 1][0]
    }
    return out
  }

  async nextSeq (author: string): Promise<number> {
    return (this.authors.get(author)?.max ?? 0) + 1
  }

  async query (q: RecordQuery): Promise<RecordPage> {
    const limit = Math.max(1, Math.min(q.limit ?? 100, 10_000))
    const reverse = q.order === 'desc'
    // pick the narrowest index for the filters given; the rest are checked on each record
    let index: Sub<string> = this.ord
    let prefix = ''
    if (q.author != null) { index = this.logs; prefix = `${q.author}!` } else if (q.modelId != null) {
      index = this.idx
      prefix = q.hardwareId != null ? `${q.modelId}!${q.hardwareId}!` : `${q.modelId}!`
    }
    const after = q.cursor != null ? decodeCursor(q.cursor) : undefined
    const range: Record<string, string | boolean> = { gte: prefix, lt: `${prefix}~`, reverse }
    if (after != null) {
      if (reverse) range.lt = after
      else { delete range.gte; range.gt = after }
    }
    const records: SignedRecord[] = []
    let lastKey: string | undefined
    for await (const [key, v] of index.iterator(range)) {
      if (v.startsWith('-')) continue
      const id = v.startsWith('+') ? v.slice(1) : v
      const wire = await this.rec.get(id)
      if (wire == null) continue
      const r = decodeStored(id, wire)
      const b = r.body
      if ((q.author != null && b.author !== q.author) || (q.modelId != null && b.model.id !== q.modelId) ||
        (q.hardwareId != null && b.hardware.id !== q.hardwareId) || (q.source != null && b.source !== q.source)) continue
      if (records.length === limit) return { records, cursor: encodeCursor(lastKey as string) }
      records.push(r)
      lastKey = key
    }
    return { records }
  }

  async * all (): AsyncIterable<SignedRecord> {
    for await (const [id, wire] of this.rec.iterator()) yield decodeStored(id, wire)
  }

  async counts (): Promise<StoreCounts> {
    return { records: this.c.records, own: this.c.own, authors: this.authors.size, equivocations: this.c.equivocations }
  }

  async evidence (): Promise<EquivocationEvidence[]> {
    const byKey = new Map<string, EquivocationEvidence>()
    for await (const key of this.evid.keys()) {
      const [author, seq, id] = key.split('!')
      const k = `${author}!${seq}`
      let e = byKey.get(k)
      if (e == null) byKey.set(k, e = { author, seq: Number(seq), ids: [] })
      e.ids.push(id)
    }
    return [...byKey.values()]
  }

  async getMeta<T = unknown> (key: string): Promise<T | undefined> {
    return await this.meta.get(key) as T | undefined
  }

  async putMeta (key: string, value: unknown): Promise<void> {
    if (key === COUNTS_KEY) throw new SwarmtuneError('E_RESERVED_KEY', 'reserved meta key')
    await this.recover()
    await this.write(async () => { await this.meta.put(key, value) })
  }

  async frontier (author: string): Promise<Frontier | undefined> {
    const st = this.authors.get(author)
    if (st == null || st.head === 0) return EMPTY_FRONTIER
    const f = this.frontiers.get(author)
    return f != null && f.length === st.head ? { length: f.length, peaks: f.peaks.slice() } : undefined
  }

  async putLogHead (head: LogHead): Promise<PutStatus> {
    const { author, length, root } = head.body
    const key = `${author}!${pad(length)}`
    const known = await this.lhd.get(key)
    if (known != null) {
      const prev = decodeLogHead(known)
      if (prev.body.root === root) return 'duplicate'
      await this.putLogHeadEvidence(prev)
      await this.putLogHeadEvidence(head)
      this.log('log head equivocation by %s at length %d', author, length)
      return 'equivocation'
    }
    await this.recover()
    // pruned in the same batch: only the heads a client can still use are kept (headsToKeep)
    const lengths = [length]
    for await (const k of this.lhd.keys({ gt: `${author}!`, lt: `${author}!~` })) lengths.push(Number(k.slice(k.lastIndexOf('!') + 1)))
    const keep = headsToKeep(lengths, LOG_HEAD_REACH)
    const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = lengths.filter(n => !keep.has(n)).map(n => ({ type: 'del', key: `${author}!${pad(n)}` }))
    if (keep.has(length)) ops.push({ type: 'put', key, value: head.wire })
    if (ops.length > 0) await this.write(async () => { await this.lhd.batch(ops) })
    // a head no client needs beside the kept ones (a longer one within reach) is not kept
    return keep.has(length) ? 'inserted' : 'duplicate'
  }

  async markUnchecked (records: SignedRecord[]): Promise<void> {
    if (records.length === 0) return
    await this.recover()
    for (const r of records) this.uncheckedAuthors.add(r.body.author)
    await this.write(async () => { await this.unck.batch(records.map(r => ({ type: 'put', key: `${logKey(r.body.author, r.body.seq)}!${r.id}`, value: '' }))) })
  }

  async firstUnchecked (author: string, afterSeq: number): Promise<number | undefined> {
    if (!this.uncheckedAuthors.has(author)) return undefined
    for await (const key of this.unck.keys({ gt: `${logKey(author, afterSeq)}!~`, lt: `${author}!~`, limit: 1 })) return Number(key.split('!')[1])
    if (afterSeq === 0) this.uncheckedAuthors.delete(author)
    return undefined
  }

  async unchecked (limit: number): Promise<UncheckedMark[]> {
    const out: UncheckedMark[] = []
    for await (const key of this.unck.keys({ limit })) {
      const [author, seq, id] = key.split('!')
      out.push({ author, seq: Number(seq), id })
    }
    return out
  }

  /**
   * Clear the marks of checked records; `forged` ones (own signature broken) are dropped as
   * retention evicts a record: the log keeps a tombstone (the author's head stays, its frontier
   * too), the record leaves `rec` and the counts; its index keys are skipped by every reader
   */
  async settleUnchecked (checked: UncheckedMark[], forged: UncheckedMark[] = []): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.jobs.push(async () => {
        try {
          await this.recover()
          const ops: Op[] = [...checked, ...forged].map(m => ({ type: 'del', sublevel: this.unck, key: `${logKey(m.author, m.seq)}!${m.id}` }))
          const c = { ...this.c }
          for (const m of forged) {
            if (this.rec.getSync(m.id) == null) continue
            ops.push({ type: 'del', sublevel: this.rec, key: m.id }, { type: 'put', sublevel: this.logs, key: logKey(m.author, m.seq), value: `-${m.id}` })
            c.records--
          }
          ops.push({ type: 'put', sublevel: this.meta, key: COUNTS_KEY, value: c })
          await this.write(async () => { await this.db.batch(ops as any[]) })
          this.c = c
          resolve()
        } catch (err) { reject(err) }
      })
      this.kick()
    })
  }

  async logHeads (author: string, afterLength = 0): Promise<LogHead[]> {
    const out: LogHead[] = []
    // stored heads were checked (signature, root) before they were put
    for await (const wire of this.lhd.values({ gt: `${author}!${pad(afterLength)}`, lt: `${author}!~` })) out.push(decodeLogHead(wire))
    return out
  }

  async putLogHeadEvidence (head: LogHead): Promise<void> {
    await this.recover()
    await this.write(async () => { await this.lhev.put(`${head.body.author}!${pad(head.body.length)}!${head.body.root}`, head.wire) })
  }

  async logHeadEvidence (): Promise<LogHead[]> {
    const out: LogHead[] = []
    for await (const wire of this.lhev.values()) out.push(decodeLogHead(wire))
    return out
  }

  async tagged (tags: string[]): Promise<Array<string | undefined>> {
    return tags.length === 0 ? [] : await this.tags.getMany(tags)
  }
}

export function createRecordStore (init: RecordStoreInit): RecordStore {
  return new LevelRecordStore(init)
}
