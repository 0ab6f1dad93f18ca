import type { NetworkConfig } from './types.js'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { checkPeerId } from '../records/validate.js'
import { toWire } from '../records/sign.js'
import type { SignedRecord } from '../records/types.js'
import type { RecordStore } from '../store/types.js'
import type { Counters } from '../util/counters.js'
import { errorCode } from '../util/errors.js'
import type { Logger } from '../util/log.js'
import { SyncViolation, classifyError, type Ingest } from './ingest.js'
import { SYNC_PROTOCOL, type NetworkGuard, type NetworkLimits } from './types.js'

/*
 * Catch-up sync, /swarmtune/sync/1.0.0. Gossip is best-effort; this makes delivery eventual.
 *
 *   client → server  HEADS  {"v":1,"pageSize":n,"maxPageBytes":b,"heads":[[author,head],...]}
 *   server → client  RECORD wire envelope          (0..pageSize of them, at most ~b bytes)
 *   server → client  END    1 byte: 1 = more pages follow, 0 = done
 *   client → server  MORE   (empty)                → next page
 *
 * Every message is one length-prefixed frame whose first byte is its type. The server sends
 * records of every author it knows with seq > the client's contiguous head (unknown authors from
 * seq 1), authors in sorted order, seqs ascending. Both sides bound frame sizes, buffered bytes,
 * records per page and per session, the idle time between frames and the session's total time;
 * any violation aborts the stream and is counted by code, never thrown out of the node.
 */
export const FRAME_HEADS = 1
export const FRAME_RECORD = 2
export const FRAME_END = 3
export const FRAME_MORE = 4

export const SyncErrorCode = {
  PROTOCOL: 'E_SYNC_PROTOCOL',
  OVERSIZE: 'E_SYNC_OVERSIZE',
  FLOOD: 'E_SYNC_FLOOD',
  LIMIT: 'E_SYNC_LIMIT',
  UNSOLICITED: 'E_SYNC_UNSOLICITED',
  ORDER: 'E_SYNC_ORDER',
  TIMEOUT: 'E_SYNC_TIMEOUT',
  BUSY: 'E_SYNC_BUSY',
  RATE_LIMITED: 'E_SYNC_RATE_LIMITED',
  CLOSED: 'E_SYNC_CLOSED'
} as const

export function frame (type: number, payload?: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + (payload?.length ?? 0))
  out[0] = type
  if (payload != null) out.set(payload, 1)
  return out
}

export interface HeadsMessage {
  pageSize: number
  maxPageBytes: number
  heads: Map<string, number>
}

/**
 * Pure: the client's heads message. Over `maxAuthors`, the authors with the highest heads are
 * declared (they cost the most to resend); the rest are synced from seq 1 and arrive as duplicates.
 */
export function encodeHeads (msg: HeadsMessage, maxAuthors: number): Uint8Array {
  let entries = [...msg.heads.entries()].filter(([, h]) => h > 0)
  if (entries.length > maxAuthors) entries = entries.sort((a, b) => b[1] - a[1]).slice(0, maxAuthors)
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const json = JSON.stringify({ v: 1, pageSize: msg.pageSize, maxPageBytes: msg.maxPageBytes, heads: entries })
  return frame(FRAME_HEADS, new TextEncoder().encode(json))
}

/** Pure: parse and bound an untrusted heads message (payload after the type byte). */
export function decodeHeads (payload: Uint8Array, limits: Pick<NetworkLimits, 'maxHeadsAuthors' | 'maxRecordFrameBytes'>): HeadsMessage {
  const bad = (why: string): never => { throw new SyncViolation(SyncErrorCode.PROTOCOL, `bad heads message: ${why}`) }
  let v: unknown
  try { v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) } catch { bad('not UTF-8 JSON') }
  if (v == null || typeof v !== 'object' || Array.isArray(v)) bad('not an object')
  const o = v as Record<string, unknown>
  if (o.v !== 1) bad('unknown version')
  const isInt = (x: unknown, lo: number, hi: number): x is number => typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi
  if (!isInt(o.pageSize, 1, 4096)) bad('pageSize')
  if (!isInt(o.maxPageBytes, limits.maxRecordFrameBytes, 64 * 1024 * 1024)) bad('maxPageBytes')
  if (!Array.isArray(o.heads)) bad('heads is not an array')
  const list = o.heads as unknown[]
  if (list.length > limits.maxHeadsAuthors) bad(`more than ${limits.maxHeadsAuthors} authors`)
  const heads = new Map<string, number>()
  for (const e of list) {
    if (!Array.isArray(e) || e.length !== 2 || !isInt(e[1], 0, Number.MAX_SAFE_INTEGER)) bad('entry')
    const [author, head] = e as [unknown, number]
    try { checkPeerId(author, 'author') } catch { bad('author') }
    if (heads.has(author as string)) bad('duplicate author')
    heads.set(author as string, head)
  }
  return { pageSize: o.pageSize as number, maxPageBytes: o.maxPageBytes as number, heads }
}

export interface Cursor { author: string, after: number }

/**
 * Pure: which author logs the server walks for this client, in order. Every author the server
 * knows is walked from the client's head (0 when unknown): the server's contiguous head alone
 * cannot tell whether it also holds records past a gap, so authors are probed, not skipped.
 */
export function planSync (serverAuthors: Iterable<string>, clientHeads: Map<string, number>): Cursor[] {
  return [...serverAuthors].sort().map(author => ({ author, after: clientHeads.get(author) ?? 0 }))
}

/** What the server reads from the store to fill one page. */
export interface PageSource { bySeq: RecordStore['bySeq'] }

/**
 * Fill one page from the cursors (mutated: advanced past what was taken, removed when drained).
 * Stops at `maxRecords` records or once `maxBytes` of wire bytes would be exceeded (a page always
 * holds at least one record when one is left, so a huge record cannot stall the session).
 */
export async function fillPage (src: PageSource, cursors: Cursor[], maxRecords: number, maxBytes: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  let bytes = 0
  while (cursors.length > 0 && out.length < maxRecords) {
    const cur = cursors[0]
    const want = Math.min(maxRecords - out.length, 64)
    const recs = await src.bySeq(cur.author, cur.after, want)
    let full = false
    for (const r of recs) {
      const w = toWire(r)
      if (out.length > 0 && bytes + w.length > maxBytes) { full = true; break }
      out.push(w)
      bytes += w.length
      cur.after = r.body.seq
    }
    if (full) break
    if (recs.length < want) cursors.shift()
  }
  return out
}

/**
 * Client-side check of every received record before it is stored: the server may only send what
 * the client asked for (seq above the declared head), each author's seqs ascending, no repeats.
 */
export function createReceiveCheck (declared: Map<string, number>): (r: SignedRecord) => void {
  const last = new Map<string, { seq: number, id: string }>()
  return (r) => {
    const { author, seq } = r.body
    const head = declared.get(author)
    if (head != null && seq <= head) throw new SyncViolation(SyncErrorCode.UNSOLICITED, `seq ${seq} of ${author} is at or below the declared head ${head}`)
    const prev = last.get(author)
    if (prev != null && (seq < prev.seq || (seq === prev.seq && r.id === prev.id))) throw new SyncViolation(SyncErrorCode.ORDER, `seq ${seq} of ${author} repeats or goes back`)
    last.set(author, { seq, id: r.id })
  }
}

/** Pure: stream/read errors → a stable code. */
export function syncErrorCode (err: unknown): string {
  const code = errorCode(err)
  if (code !== 'E_INTERNAL' && code.startsWith('E_')) return code
  const name = (err as Error)?.name ?? ''
  if (code === 'ERR_MSG_DATA_TOO_LONG' || code === 'ERR_MSG_LENGTH_TOO_LONG') return SyncErrorCode.OVERSIZE
  if (code === 'ERR_INVALID_MSG_LENGTH') return SyncErrorCode.PROTOCOL
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError' || name === 'InvalidMessageLengthError') return SyncErrorCode.OVERSIZE
  if (name === 'StreamBufferError') return SyncErrorCode.FLOOD
  if (name === 'UnexpectedEOFError' || name === 'StreamResetError' || name === 'StreamStateError' || name === 'StreamClosedError') return SyncErrorCode.CLOSED
  if (name === 'AbortError' || name === 'TimeoutError') return SyncErrorCode.TIMEOUT
  return 'E_INTERNAL'
}

/** A violation whose code was already counted where it was detected. */
class CountedViolation extends SyncViolation {}

/** Codes that blame the remote peer (counted as rejections); the others are ordinary failures. */
const BLAMEWORTHY = new Set<string>([
  SyncErrorCode.PROTOCOL, SyncErrorCode.OVERSIZE, SyncErrorCode.FLOOD, SyncErrorCode.LIMIT,
  SyncErrorCode.UNSOLICITED, SyncErrorCode.ORDER, SyncErrorCode.TIMEOUT, SyncErrorCode.BUSY,
  SyncErrorCode.RATE_LIMITED
])

/**
 * One abort controller per session, tripped by an idle watchdog (re-armed on every frame), by the
 * overall session deadline, or by the node stopping.
 */
class SessionClock {
  readonly controller = new AbortController()
  private readonly idle: ReturnType<typeof setTimeout>
  private readonly total: ReturnType<typeof setTimeout>
  constructor (idleMs: number, totalMs: number) {
    this.idle = setTimeout(() => { this.controller.abort(new SyncViolation(SyncErrorCode.TIMEOUT, `no frame for ${idleMs} ms`)) }, idleMs)
    this.total = setTimeout(() => { this.controller.abort(new SyncViolation(SyncErrorCode.TIMEOUT, `session exceeded ${totalMs} ms`)) }, totalMs)
  }

  get signal (): AbortSignal { return this.controller.signal }
  kick (): void { this.idle.refresh() }
  stop (): void { clearTimeout(this.idle); clearTimeout(this.total) }
}

export interface SyncResult {
  peer: string
  ok: boolean
  /** records received / newly stored in this session */
  received: number
  inserted: number
  pages: number
  code?: string
}

export interface SyncServiceComponents {
  config: NetworkConfig
  limits: NetworkLimits
  store: RecordStore
  ingest: Ingest
  stats: Counters
  rejections: Counters
  guard: NetworkGuard
  log: Logger
  /** an open connection to the peer, or undefined */
  connectionTo: (peer: PeerId) => Connection | undefined
}

export class SyncService {
  private readonly inbound = new Map<string, number>()
  private inboundTotal = 0
  private readonly outbound = new Map<string, Promise<SyncResult>>()
  private readonly sessions = new Set<SessionClock>()
  private stopped = false

  constructor (private readonly c: SyncServiceComponents) {}

  start (): void { this.stopped = false }

  stop (): void {
    this.stopped = true
    for (const s of this.sessions) s.controller.abort(new SyncViolation(SyncErrorCode.CLOSED, 'node stopping'))
  }

  private openClock (): SessionClock {
    const clock = new SessionClock(this.c.config.net.sync.timeoutMs, this.c.limits.sessionTimeoutMs)
    this.sessions.add(clock)
    return clock
  }

  private closeClock (clock: SessionClock): void {
    clock.stop()
    this.sessions.delete(clock)
  }

  /** Count a failed session; blame the peer only for violations (bad records are counted by ingest). */
  private fail (peer: string, code: string, role: 'client' | 'server', err: unknown): void {
    this.c.stats.inc(role === 'client' ? 'syncSessionsFailed' : 'syncServeFailed')
    if (BLAMEWORTHY.has(code) && !(err instanceof CountedViolation)) {
      this.c.rejections.inc(code)
      this.c.guard.onViolation?.(peer, code, 'sync')
    }
    this.c.log('sync %s with %s aborted: %s %s', role, peer, code, (err as Error)?.message)
  }

  /** Inbound stream handler (the server side). Never throws. */
  async handle (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const limits = this.c.limits
    const n = this.inbound.get(peer) ?? 0
    if (this.stopped || n >= limits.maxInboundSyncPerPeer || this.inboundTotal >= limits.maxInboundSyncTotal) {
      const err = new SyncViolation(SyncErrorCode.BUSY, 'too many concurrent sync sessions')
      this.fail(peer, SyncErrorCode.BUSY, 'server', err)
      stream.abort(err)
      return
    }
    if (this.c.guard.admitSync?.(peer) === false) {
      const err = new SyncViolation(SyncErrorCode.RATE_LIMITED, 'sync rate limit')
      this.fail(peer, SyncErrorCode.RATE_LIMITED, 'server', err)
      stream.abort(err)
      return
    }
    this.inbound.set(peer, n + 1)
    this.inboundTotal++
    this.c.stats.inc('syncSessionsIn')
    const clock = this.openClock()
    try {
      await this.serve(stream, clock)
      this.c.stats.inc('syncServedOk')
    } catch (err) {
      const code = syncErrorCode(clock.signal.aborted ? clock.signal.reason : err)
      this.fail(peer, code, 'server', err)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.closeClock(clock)
      this.inboundTotal--
      const left = (this.inbound.get(peer) ?? 1) - 1
      if (left <= 0) this.inbound.delete(peer)
      else this.inbound.set(peer, left)
    }
  }

  private async serve (stream: Stream, clock: SessionClock): Promise<void> {
    const { limits, config } = this.c
    const signal = clock.signal
    const lp = lpStream(stream, { maxDataLength: limits.maxHeadsFrameBytes, maxBufferSize: limits.maxHeadsFrameBytes + 4096 })
    const first = (await lp.read({ signal })).subarray()
    clock.kick()
    if (first[0] !== FRAME_HEADS) throw new SyncViolation(SyncErrorCode.PROTOCOL, `expected HEADS, got frame type ${first[0]}`)
    const req = decodeHeads(first.subarray(1), limits)
    const pageSize = Math.min(config.net.sync.pageSize, req.pageSize)
    const pageBytes = Math.min(limits.maxPageBytes, req.maxPageBytes)
    const cursors = planSync((await this.c.store.heads()).keys(), req.heads)
    let sent = 0
    const nextPage = async (): Promise<Uint8Array[]> => {
      const room = Math.min(pageSize, config.net.sync.maxRecordsPerSession - sent)
      const page = room > 0 ? await fillPage(this.c.store, cursors, room, pageBytes) : []
      sent += page.length
      return page
    }
    let page = await nextPage()
    for (;;) {
      const more = cursors.length > 0 && sent < config.net.sync.maxRecordsPerSession
      const frames = page.map(w => frame(FRAME_RECORD, w))
      frames.push(frame(FRAME_END, Uint8Array.of(more ? 1 : 0)))
      await lp.writeV(frames, { signal })
      clock.kick()
      this.c.stats.inc('syncRecordsOut', page.length)
      if (!more) break
      // read the next page from the store while the client verifies this one
      const prefetch = nextPage()
      prefetch.catch(() => {})
      const next = (await lp.read({ signal })).subarray()
      clock.kick()
      if (next.length !== 1 || next[0] !== FRAME_MORE) throw new SyncViolation(SyncErrorCode.PROTOCOL, 'expected MORE')
      page = await prefetch
    }
    await stream.close({ signal })
  }

  /** Catch up from one peer over an existing connection. Concurrent calls for a peer share one session. */
  async syncWith (peerId: PeerId): Promise<SyncResult> {
    const peer = peerId.toString()
    const running = this.outbound.get(peer)
    if (running != null) return await running
    const p = this.runClient(peerId).finally(() => { this.outbound.delete(peer) })
    this.outbound.set(peer, p)
    return await p
  }

  private async runClient (peerId: PeerId): Promise<SyncResult> {
    const peer = peerId.toString()
    const res: SyncResult = { peer, ok: false, received: 0, inserted: 0, pages: 0 }
    if (this.stopped) return { ...res, code: SyncErrorCode.CLOSED }
    const conn = this.c.connectionTo(peerId)
    if (conn == null) return { ...res, code: SyncErrorCode.CLOSED }
    this.c.stats.inc('syncSessionsOut')
    const clock = this.openClock()
    let stream: Stream | undefined
    try {
      stream = await conn.newStream(SYNC_PROTOCOL, { signal: clock.signal })
      await this.fetch(stream, clock, res)
      res.ok = true
      this.c.stats.inc('syncSessionsOk')
    } catch (err) {
      const cause: unknown = clock.signal.aborted ? clock.signal.reason : err
      res.code = syncErrorCode(cause)
      // an abort for an invalid record carries the violation, already counted by ingest
      this.fail(peer, res.code, 'client', cause instanceof CountedViolation ? cause : err)
      stream?.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.closeClock(clock)
    }
    return res
  }

  private async fetch (stream: Stream, clock: SessionClock, res: SyncResult): Promise<void> {
    const { limits, config } = this.c
    const { pageSize, maxRecordsPerSession } = config.net.sync
    const signal = clock.signal
    // one page is the most the server may send before we ask again: that bounds our buffer
    const lp: LengthPrefixedStream = lpStream(stream, {
      maxDataLength: limits.maxRecordFrameBytes,
      maxBufferSize: limits.maxPageBytes + 2 * limits.maxRecordFrameBytes + 4096
    })
    const heads = await this.c.store.heads()
    const hello = encodeHeads({ pageSize, maxPageBytes: limits.maxPageBytes, heads }, limits.maxHeadsAuthors)
    const declared = decodeHeads(hello.subarray(1), limits).heads
    const check = createReceiveCheck(declared)
    await lp.write(hello, { signal })
    // records are verified as they arrive and stored one page per batch; the store write of a
    // page overlaps with receiving and verifying the next (at most one batch in flight)
    let batch: SignedRecord[] = []
    let pending: Promise<void> = Promise.resolve()
    const flush = async (): Promise<void> => {
      const b = batch
      batch = []
      for (const o of await this.c.ingest.commit(b, 'sync')) if (o.kind === 'inserted') res.inserted++
    }
    // each record's verification starts as it arrives (on the pool's workers when there is one);
    // a page's verdicts are taken in order once its END arrives and MORE has gone out, so the
    // server sends the next page meanwhile; the page is then stored while the next one arrives.
    // An invalid record cuts the session at once, not at the end of its page
    let wires: Array<Promise<SignedRecord>> = []
    let chain: Promise<unknown> = Promise.resolve()
    try {
      for (;;) {
        const buf = (await lp.read({ signal })).subarray()
        clock.kick()
        const type = buf[0]
        if (type === FRAME_RECORD) {
          if (wires.length >= pageSize) throw new SyncViolation(SyncErrorCode.FLOOD, `more than ${pageSize} records in one page`)
          if (++res.received > maxRecordsPerSession) throw new SyncViolation(SyncErrorCode.LIMIT, `more than ${maxRecordsPerSession} records in one session`)
          const started = this.c.ingest.begin(buf.slice(1))
          // the receive check runs in arrival order, each record once its signature is known
          const checked = chain.then(async () => { const r = await started; check(r); return r })
          chain = checked.catch(() => {})
          checked.catch((err: unknown) => {
            if (classifyError(err).kind === 'rejected') clock.controller.abort(new CountedViolation(errorCode(err), 'peer sent an invalid record'))
          })
          wires.push(checked)
        } else if (type === FRAME_END && buf.length === 2) {
          res.pages++
          // ask for the next page first, so the server reads it while we verify and store this one
          if (buf[1] === 1) await lp.write(frame(FRAME_MORE), { signal })
          const page = wires
          wires = []
          const verdicts = await this.c.ingest.verifyMany(page, 'sync')
          clock.kick()
          await pending
          for (const v of verdicts) {
            if (v.kind === 'verified') batch.push(v.record)
            else if (v.kind === 'rejected') {
              // ingest already counted the code; blame the peer once and cut the session
              this.c.guard.onViolation?.(res.peer, v.code, 'sync')
              throw new CountedViolation(v.code, 'peer sent an invalid record')
            }
          }
          pending = flush()
          if (buf[1] !== 1) break
        } else {
          throw new SyncViolation(SyncErrorCode.PROTOCOL, `unexpected frame type ${type}`)
        }
      }
    } finally {
      // valid records received before a failure are kept, those of an unfinished page too (up
      // to the first invalid one); its refusals are counted, the session's failure is charged once
      if (wires.length > 0) {
        for (const v of await this.c.ingest.verifyMany(wires, 'sync')) {
          if (v.kind === 'rejected') {
            this.c.guard.onViolation?.(res.peer, v.code, 'sync')
            break
          }
          if (v.kind === 'verified') batch.push(v.record)
        }
      }
      await pending
      await flush()
    }
    await stream.close({ signal })
  }
}
