import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { LOG_HEAD_REACH, decodeLogHead, verifyLogHeadSignature, type LogHead } from '../records/log-head.js'
import { appendLeafInPlace, frontierRoot, toHex, type Frontier } from '../records/merkle.js'
import { leafOf, toWire } from '../records/sign.js'
import type { SignedRecord } from '../records/types.js'
import type { RecordStore, UncheckedMark } from '../store/types.js'
import { errorCode } from '../util/errors.js'
import { SyncViolation, classifyError, type Verified } from './ingest.js'
import { CountedViolation, FRAME_END, FRAME_MORE, FRAME_RECORD, FRAME_RECORDS, MAX_PAGES_AHEAD, SyncErrorCode, createReceiveCheck, decodeHeads, encodeHeads, frame, readLooseWires, readWires, unpackRecords, type Cursor, type PageSource, type SyncResult, type SyncServiceComponents } from './sync-wire.js'

/*
 * Catch-up sync 2.0.0, /swarmtune/sync/2.0.0 (docs/records.md, "Sync 2.0.0"). The 1.0.0 frames
 * plus one:
 *
 *   client → server  HEADS     as 1.0.0 with "v":2
 *   server → client  LOG_HEAD  count (u32 BE) ‖ a signed log head of author A, length n: the
 *                              next `count` RECORD frames are a *run*: A's records n-count+1 .. n
 *   server → client  RECORD / END, client → server MORE, as 1.0.0
 *
 * The client checks a run with one signature: it appends the run's leaves to its own Merkle
 * frontier of A's log 1..head (kept by the store), compares the root with the head's and then
 * verifies the head's signature. Records outside runs, runs whose root does not match and runs
 * the client has no frontier for are verified record by record, as in 1.0.0.
 */
export const FRAME_LOG_HEAD = 5
/** most records in one run: the client buffers a run until its root is checked (~6 MiB at 1.5 KiB) */
export const MAX_RUN_RECORDS = LOG_HEAD_REACH
/** most wire bytes in one run (records may be up to 64 KiB: 4096 of those would be 256 MiB) */
export const MAX_RUN_BYTES = 16 * 1024 * 1024

export interface RunCursor extends Cursor {
  heads?: LogHead[]
  /** the wires of the run being sent, and the next index */
  queue?: Uint8Array[]
  qi?: number
}

export interface RunSource extends PageSource { logHeads?: RecordStore['logHeads'] }

/**
 * The run a cursor can take next: the longest stored head within `maxRun` records (and
 * `maxBytes`) of the cursor whose records 1..length this server holds without a hole (contiguous
 * head, nothing evicted or dropped) and has checked one by one (none marked unchecked).
 */
export async function openRun (src: RunSource, cur: RunCursor, contiguous: number, maxRun: number, maxBytes = MAX_RUN_BYTES): Promise<{ head: LogHead, wires: Uint8Array[] } | undefined> {
  cur.heads ??= (await src.logHeads?.(cur.author, cur.after)) ?? []
  // a record whose own signature this node has not checked is not sent, not even in a run: a
  // client whose root check fails checks the run record by record, and would charge this node
  const unchecked = cur.heads.length > 0 ? await src.firstUnchecked?.(cur.author, cur.after) : undefined
  for (let i = cur.heads.length - 1; i >= 0; i--) {
    const n = cur.heads[i].body.length
    if (n <= cur.after) break
    if (n > contiguous || n - cur.after > maxRun || (unchecked != null && n >= unchecked)) continue
    const recs = await readWires(src, cur.author, cur.after, n - cur.after)
    if (recs.length === n - cur.after && recs.every((r, k) => r.seq === cur.after + 1 + k)) {
      // too many bytes for one run: a shorter head may do
      if (recs.reduce((b, r) => b + r.wire.length, 0) > maxBytes) continue
      return { head: cur.heads[i], wires: recs.map(r => r.wire) }
    }
    // a hole (a record evicted by retention, or dropped as forged): this head cannot be served
    cur.heads.splice(i, 1)
  }
  return undefined
}

/** LOG_HEAD payload: the run's record count (4 bytes, big-endian) ‖ the head's wire. */
export function logHeadPayload (count: number, head: LogHead): Uint8Array {
  const out = new Uint8Array(4 + head.wire.length)
  new DataView(out.buffer).setUint32(0, count)
  out.set(head.wire, 4)
  return out
}

/**
 * Fill one 2.0.0 page (frames, type byte included): runs where a head is within reach, loose
 * records elsewhere. Bounds as fillPage(): `maxRecords` records, `maxBytes` of records (a page
 * holds at least one record when one is left).
 */
export async function fillPageV2 (src: RunSource, cursors: RunCursor[], contiguous: Map<string, number>, maxRecords: number, maxBytes: number, maxRun = MAX_RUN_RECORDS): Promise<{ frames: Uint8Array[], records: number }> {
  const frames: Uint8Array[] = []
  let records = 0
  let bytes = 0
  const take = (w: Uint8Array): boolean => {
    if (records > 0 && bytes + w.length > maxBytes) return false
    frames.push(frame(FRAME_RECORD, w))
    bytes += w.length
    records++
    return true
  }
  while (cursors.length > 0 && records < maxRecords) {
    const cur = cursors[0]
    if (cur.queue == null || (cur.qi ?? 0) >= cur.queue.length) {
      cur.queue = undefined
      const run = await openRun(src, cur, contiguous.get(cur.author) ?? 0, maxRun)
      if (run != null) {
        frames.push(frame(FRAME_LOG_HEAD, logHeadPayload(run.wires.length, run.head)))
        cur.queue = run.wires
        cur.qi = 0
      }
    }
    if (cur.queue != null) {
      while ((cur.qi as number) < cur.queue.length && records < maxRecords && take(cur.queue[cur.qi as number])) { cur.qi = (cur.qi as number) + 1; cur.after++ }
      if ((cur.qi as number) < cur.queue.length) break
      continue
    }
    // no head within reach: loose records, which the client verifies one by one
    const want = Math.min(maxRecords - records, 64)
    const recs = await readLooseWires(src, cur.author, cur.after, want)
    let full = false
    for (const r of recs) {
      if (!take(r.wire)) { full = true; break }
      cur.after = r.seq
    }
    if (full) break
    if (recs.length < want) cursors.shift()
  }
  return { frames, records }
}

/** The node signs a head over its own log when it serves 2.0.0 and its log grew since its last head. */
export interface OwnHeadSigner {
  author: string
  sign: (length: number, root: Uint8Array) => Promise<LogHead>
}

export async function ensureOwnHead (store: RecordStore, self: OwnHeadSigner | undefined): Promise<void> {
  if (self == null || store.frontier == null || store.putLogHead == null || store.logHeads == null) return
  const head = (await store.heads()).get(self.author) ?? 0
  if (head === 0) return
  if ((await store.logHeads(self.author, head - 1)).length > 0) return
  const f = await store.frontier(self.author)
  if (f == null || f.length !== head) return
  await store.putLogHead(await self.sign(head, frontierRoot(f)))
}

type HeadComponents = Pick<SyncServiceComponents, 'store' | 'stats' | 'rejections' | 'guard' | 'log'>

/**
 * Keep a head whose run was attested, once the run's records are stored, and only if the log the
 * store holds agrees with it: the store's frontier at the head's length has the head's root. So
 * every kept head is a prefix of the one log the store holds, and of two kept heads m < n the
 * head m is a prefix of the n-log. A run's root was checked against the client's view of the log;
 * the store may hold other records at some of its seqs (an author that signed two records for one
 * seq, one of them stored before): then the head disagrees and is kept as evidence. A head the
 * store's log does not end at (records of it not stored, or records past it stored meanwhile) is
 * not kept: it cannot be checked in O(1), and later heads will be.
 */
export async function keepHead (c: HeadComponents, head: LogHead): Promise<void> {
  try {
    const f = await c.store.frontier?.(head.body.author)
    if (f == null || f.length !== head.body.length || c.store.putLogHead == null) return
    if (toHex(frontierRoot(f)) !== head.body.root) { await keepHeadConflict(c, head); return }
    if (await c.store.putLogHead(head) === 'equivocation') c.stats.inc('syncHeadEquivocations')
  } catch (err) {
    c.log('keeping a log head failed: %s', (err as Error)?.message)
  }
}

/**
 * A checked head of an author that disagrees with the log of records the same author signed: the
 * author signed two logs. The head is kept as evidence with the author's kept head nearest below
 * it (or above it), the author is charged (its peer id, which trust reads), never the server.
 */
export async function keepHeadConflict (c: HeadComponents, head: LogHead): Promise<void> {
  const { author, length } = head.body
  c.stats.inc('syncHeadConflicts')
  c.rejections.inc(SyncErrorCode.HEAD_CONFLICT)
  c.guard.onViolation?.(author, SyncErrorCode.HEAD_CONFLICT, 'sync')
  c.log('log head of %s at %d disagrees with records it signed', author, length)
  await c.store.putLogHeadEvidence?.(head)
  const held = (await c.store.logHeads?.(author)) ?? []
  const other = held.filter(h => h.body.length < length).pop() ?? held.find(h => h.body.length > length)
  if (other != null) await c.store.putLogHeadEvidence?.(other)
}

/**
 * Checks, in the background, the own signatures of records taken in through a log head (marked
 * unchecked in the store before they were stored): a malicious author can sign a head over one of
 * its records whose own signature is broken. Checked records lose their mark (and may then be sent
 * to peers that check records one by one); a broken one is dropped, counted and charged to its
 * author. One round at a time, `batch` records per round, each on the verify pool when there is one.
 */
export class UncheckedChecker {
  private running?: Promise<void>
  private again = false
  private stopped = false

  constructor (private readonly c: Pick<SyncServiceComponents, 'store' | 'ingest' | 'stats' | 'rejections' | 'guard' | 'log' | 'relayChecked'>, private readonly batch = 128) {}

  /** start checking (or check again once the current pass ends); resolves when nothing is left or no progress is made */
  kick (): Promise<void> {
    this.stopped = false
    if (this.running != null) { this.again = true; return this.running }
    if (this.c.store.unchecked == null || this.c.store.settleUnchecked == null) return Promise.resolve()
    this.running = this.loop().finally(() => { this.running = undefined })
    return this.running
  }

  stop (): void { this.stopped = true }

  private async loop (): Promise<void> {
    try {
      do {
        this.again = false
        while (!this.stopped && await this.round() > 0) {}
      } while (this.again && !this.stopped)
    } catch (err) {
      this.c.log('checking records taken in through log heads failed: %s', (err as Error)?.message)
    }
  }

  /** one batch; returns how many marks it settled */
  private async round (): Promise<number> {
    const store = this.c.store
    const marks = await store.unchecked!(this.batch)
    const checked: UncheckedMark[] = []
    const relay: SignedRecord[] = []
    const forged: Array<UncheckedMark & { code: string }> = []
    await Promise.all(marks.map(async m => {
      const r = await store.get(m.id)
      if (r == null) { checked.push(m); return }
      try {
        await this.c.ingest.begin(toWire(r))
        checked.push(m)
        relay.push(r)
      } catch (err) {
        const v = classifyError(err)
        // not the record's fault (a busy pool, a retry): it stays marked for the next pass
        if (v.kind === 'rejected') forged.push({ ...m, code: v.code })
      }
    }))
    if (checked.length + forged.length === 0) return 0
    await store.settleUnchecked!(checked, forged)
    this.c.stats.inc('syncUncheckedVerified', checked.length)
    // checked now: gossip may pass them on (within the node's relay budget)
    for (const r of relay) this.c.relayChecked?.(r)
    for (const m of forged) {
      this.c.stats.inc('syncUncheckedForged')
      this.c.rejections.inc(m.code)
      this.c.guard.onViolation?.(m.author, m.code, 'sync')
      this.c.log('record %d of %s, taken in through its log head, fails its own check (%s): dropped', m.seq, m.author, m.code)
    }
    return checked.length + forged.length
  }
}

interface AuthorPos { seq: number, frontier: Frontier | null }
/** a finished run: its verdicts, and whether they come from the root check (attested, then `head` is kept once they are stored) */
export interface RunOutcome { verdicts: Verified[], attested: boolean, head?: LogHead }
interface OpenRun { head: LogHead, count: number, parsed: Array<Promise<SignedRecord>>, wires: Uint8Array[], bytes: number }
interface Clock { signal: AbortSignal, controller: AbortController, kick: () => void }

/**
 * Client side of runs and loose records, in arrival order. Per author it follows the position
 * and frontier of the log the client will hold once this session's records are stored.
 */
export class RunTracker {
  private readonly pos = new Map<string, AuthorPos>()
  private run?: OpenRun
  /** every record's position step, in arrival order */
  private chain: Promise<unknown> = Promise.resolve()

  /** `check`: the 1.0.0 receive check (nothing at or below the declared head, no going back), on every record */
  constructor (private readonly c: SyncServiceComponents, private readonly declared: Map<string, number>, private readonly peer: string, private readonly clock: Clock, private readonly check: (r: SignedRecord) => void = () => {}) {}

  get active (): boolean { return this.run != null }

  /**
   * LOG_HEAD: `count` (4 bytes, big-endian: the records of the run) ‖ the head. Opens a run (cheap
   * checks; the signature is checked once the root matched)
   */
  open (payload: Uint8Array): void {
    if (this.run != null) throw new SyncViolation(SyncErrorCode.PROOF, 'log head inside a run')
    let head: LogHead
    if (payload.length < 5) throw new SyncViolation(SyncErrorCode.PROOF, 'log head frame too short')
    const count = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0)
    try { head = decodeLogHead(payload.subarray(4)) } catch (err) { throw new SyncViolation(SyncErrorCode.PROOF, `bad log head: ${(err as Error).message}`) }
    if (count < 1 || count > MAX_RUN_RECORDS || count > head.body.length) throw new SyncViolation(SyncErrorCode.PROOF, `a run of ${count} records`)
    this.run = { head, count, parsed: [], wires: [], bytes: 0 }
  }

  /**
   * A record inside a run: its body checks start on the pool, where its leaf is hashed too (from
   * the bytes checked there). At the run's last record, the run's verdicts (settled in arrival order).
   */
  add (wire: Uint8Array): Promise<RunOutcome> | undefined {
    const run = this.run as OpenRun
    run.bytes += wire.length
    if (run.bytes > MAX_RUN_BYTES) throw new SyncViolation(SyncErrorCode.LIMIT, `a run of more than ${MAX_RUN_BYTES} bytes`)
    run.wires.push(wire)
    run.parsed.push(this.c.ingest.checkBody(wire))
    if (run.wires.length < run.count) return undefined
    this.run = undefined
    const done = this.chain.then(async () => await this.finish(run))
    this.chain = done.catch(() => {})
    done.catch((err: unknown) => { this.clock.controller.abort(err) })
    return done
  }

  /** The run's records once their bodies are checked; undefined when one is refused for a reason that is not the sender's fault. */
  private async parsed (run: OpenRun): Promise<SignedRecord[] | undefined> {
    const settled = await Promise.allSettled(run.parsed)
    const records: SignedRecord[] = []
    for (const s of settled) {
      if (s.status === 'fulfilled') { records.push(s.value); continue }
      if (classifyError(s.reason).kind === 'rejected') this.reject(s.reason)
      // a clock ahead of ours: the run is checked record by record, the record refused as ignorable
      return undefined
    }
    const { author, length } = run.head.body
    const first = length - run.count + 1
    records.forEach((r, i) => {
      if (r.body.author !== author || r.body.seq !== first + i) throw new SyncViolation(SyncErrorCode.PROOF, `record ${i + 1} of a run to ${length} of ${author} is seq ${r.body.seq} of ${r.body.author}`)
    })
    for (const r of records) this.check(r)
    return records
  }

  /** A record outside runs: verified on its own (1.0.0), then it moves its author's position. */
  loose (wire: Uint8Array): Promise<SignedRecord> {
    const started = this.c.ingest.begin(wire)
    const checked = this.chain.then(async () => {
      const r = await started
      this.check(r)
      const st = await this.state(r.body.author)
      if (st.frontier != null && r.body.seq === st.seq + 1) appendLeafInPlace(st.frontier, leafOf(r))
      else if (r.body.seq > st.seq) st.frontier = null
      st.seq = Math.max(st.seq, r.body.seq)
      return r
    })
    this.chain = checked.catch(() => {})
    checked.catch((err: unknown) => {
      if (classifyError(err).kind === 'rejected') this.clock.controller.abort(new CountedViolation(errorCode(err), 'peer sent an invalid record'))
    })
    return checked
  }

  private reject (err: unknown): never {
    const code = errorCode(err)
    this.c.rejections.inc(code)
    this.c.stats.inc('syncReceived')
    this.c.stats.inc('syncRejected')
    this.c.guard.onViolation?.(this.peer, code, 'sync')
    throw new CountedViolation(code, `peer sent an invalid record in a run: ${(err as Error).message}`)
  }

  private async state (author: string): Promise<AuthorPos> {
    let st = this.pos.get(author)
    if (st == null) {
      const head = this.declared.get(author) ?? 0
      const f = head === 0 ? { length: 0, peaks: [] } : await this.c.store.frontier?.(author)
      st = { seq: head, frontier: f != null && f.length === head ? f : null }
      this.pos.set(author, st)
    }
    return st
  }

  /** Root check and one signature; record by record when the root cannot be or is not matched. */
  private async finish (run: OpenRun): Promise<RunOutcome> {
    const { head } = run
    const records = await this.parsed(run)
    const st = await this.state(head.body.author)
    let f: Frontier | null = null
    const fallback = records == null
    if (records != null && st.frontier != null && records[0].body.seq === st.seq + 1) {
      f = { length: st.frontier.length, peaks: st.frontier.peaks.slice() }
      // each leaf is the hash of the bytes whose body was checked (records/sign.ts leafOf)
      for (const r of records) appendLeafInPlace(f, leafOf(r))
    }
    if (records != null && f != null && toHex(frontierRoot(f)) === head.body.root) {
      await this.checkHead(head)
      this.c.stats.inc('syncReceived', records.length)
      this.c.stats.inc('syncRunRecords', records.length)
      this.c.stats.inc('syncRunsVerified')
      st.seq = head.body.length
      st.frontier = f
      return { verdicts: records.map(record => ({ kind: 'verified', record })), attested: true, head }
    }
    this.c.stats.inc('syncRunsFallback')
    const verdicts = await this.c.ingest.verifyMany(run.wires, 'sync', fallback ? { check: this.check } : {})
    const bad = verdicts.find(v => v.kind === 'rejected')
    const allOk = verdicts.every(v => v.kind === 'verified')
    st.seq = Math.max(st.seq, head.body.length)
    st.frontier = allOk ? f : null
    if (bad != null) this.clock.controller.abort(new CountedViolation(bad.kind === 'rejected' ? bad.code : 'E_INTERNAL', 'peer sent an invalid record'))
    else if (allOk && f != null && !fallback) {
      // every record is the author's and so is the prefix we hold, yet the root differs: the
      // author signed a head over another log. Evidence against the author, not the server
      await this.checkHead(head)
      await keepHeadConflict(this.c, head)
    }
    return { verdicts, attested: false }
  }

  private async checkHead (head: LogHead): Promise<void> {
    try {
      await verifyLogHeadSignature(head)
    } catch {
      throw new SyncViolation(SyncErrorCode.PROOF, `log head of ${head.body.author} at ${head.body.length}: signature does not verify`)
    }
  }
}

export interface FetchV2 {
  c: SyncServiceComponents
  clock: Clock
  res: SyncResult
  /** keep verified records: `attested` ones were checked through a log head, not one by one */
  commit: (records: SignedRecord[], attested: SignedRecord[]) => Promise<void>
}

/** The 2.0.0 client session: HEADS, then pages of runs and loose records until END(0). */
export async function fetchV2 (stream: Stream, s: FetchV2): Promise<void> {
  const { c, clock, res } = s
  const { limits, config } = c
  const { pageSize, maxRecordsPerSession } = config.net.sync
  const signal = clock.signal
  // the server may send MAX_PAGES_AHEAD pages past the one asked for (a server that does not know
  // `ahead` sends one page per MORE): that many pages more are the most we buffer unread
  const lp = lpStream(stream, {
    maxDataLength: limits.maxRecordFrameBytes,
    maxBufferSize: (MAX_PAGES_AHEAD + 1) * (limits.maxPageBytes + 2 * limits.maxRecordFrameBytes) + 4096
  })
  // `pack`: records several to a frame, up to the frames this stream reads (net.sync.pack, default on)
  const pack = config.net.sync.pack === false ? undefined : limits.maxRecordFrameBytes
  const hello = encodeHeads({ pageSize, maxPageBytes: limits.maxPageBytes, heads: await c.store.heads(), ahead: MAX_PAGES_AHEAD, pack }, limits.maxHeadsAuthors, 2)
  const declared = decodeHeads(hello.subarray(1), limits, 2).heads
  const check = createReceiveCheck(declared)
  const runs = new RunTracker(c, declared, res.peer, clock, check)
  await lp.write(hello, { signal })
  let loose: Array<Promise<SignedRecord>> = []
  let done: Array<Promise<RunOutcome>> = []
  let pending: Promise<void> = Promise.resolve()
  let collecting: Promise<void> = Promise.resolve()
  let failed = false
  let inPage = 0
  // verdicts of a page (loose records first, then completed runs); the first refusal cuts the session
  const collect = async (page: Array<Promise<SignedRecord>>, finished: Array<Promise<RunOutcome>>, settle: boolean): Promise<void> => {
    const verdicts = await c.ingest.verifyMany(page, 'sync')
    const ok: SignedRecord[] = []
    const attested: SignedRecord[] = []
    const heads: LogHead[] = []
    let refused: string | undefined
    for (const v of verdicts) {
      if (v.kind === 'verified') ok.push(v.record)
      else if (v.kind === 'rejected') { refused = v.code; break }
    }
    for (const outcome of settle ? await Promise.allSettled(finished) : (await Promise.all(finished)).map(value => ({ status: 'fulfilled' as const, value }))) {
      if (refused != null || outcome.status !== 'fulfilled') continue
      if (outcome.value.head != null) heads.push(outcome.value.head)
      for (const v of outcome.value.verdicts) {
        if (v.kind === 'verified') (outcome.value.attested ? attested : ok).push(v.record)
        else if (v.kind === 'rejected') { refused = v.code; break }
      }
    }
    await pending
    // a head is kept once its run is stored and the store's log agrees with it (keepHead)
    pending = s.commit(ok, attested).then(async () => { for (const h of heads) await keepHead(c, h) })
    if (refused != null) {
      c.guard.onViolation?.(res.peer, refused, 'sync')
      throw new CountedViolation(refused, 'peer sent an invalid record')
    }
  }
  // one record of a RECORD frame or of a RECORDS frame: the same bounds and order either way
  const take = (payload: Uint8Array): void => {
    if (inPage++ >= pageSize) throw new SyncViolation(SyncErrorCode.FLOOD, `more than ${pageSize} records in one page`)
    if (++res.received > maxRecordsPerSession) throw new SyncViolation(SyncErrorCode.LIMIT, `more than ${maxRecordsPerSession} records in one session`)
    // a copy: the frame's buffer is the stream's
    const wire = payload.slice()
    if (runs.active) {
      const finished = runs.add(wire)
      if (finished != null) done.push(finished)
    } else loose.push(runs.loose(wire))
  }
  try {
    for (;;) {
      const buf = (await lp.read({ signal })).subarray()
      clock.kick()
      const type = buf[0]
      if (type === FRAME_LOG_HEAD) runs.open(buf.subarray(1))
      else if (type === FRAME_RECORD) take(buf.subarray(1))
      else if (type === FRAME_RECORDS) {
        for (const w of unpackRecords(buf.subarray(1))) take(w)
      } else if (type === FRAME_END && buf.length === 2) {
        res.pages++
        inPage = 0
        if (buf[1] !== 1 && runs.active) throw new SyncViolation(SyncErrorCode.PROOF, 'the session ended inside a run')
        if (buf[1] === 1) await lp.write(frame(FRAME_MORE), { signal })
        const page = loose
        const finished = done
        loose = []
        done = []
        // one page is collected (checked, stored) while the next one arrives and is hashed
        await collecting
        collecting = collect(page, finished, false)
        collecting.catch((err: unknown) => { failed = true; clock.controller.abort(err) })
        if (buf[1] !== 1) { await collecting; break }
      } else {
        throw new SyncViolation(SyncErrorCode.PROTOCOL, `unexpected frame type ${type}`)
      }
    }
  } finally {
    // as 1.0.0: what was verified before a failure is kept, up to the first invalid record
    await collecting.catch(() => {})
    if (!failed && (loose.length > 0 || done.length > 0)) await collect(loose, done, true).catch(() => {})
    await pending
  }
  await stream.close({ signal })
}
