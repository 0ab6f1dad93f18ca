import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { SignedRecord } from '../records/types.js'
import { errorCode } from '../util/errors.js'
import { SyncViolation, classifyError } from './ingest.js'
import { UncheckedChecker, ensureOwnHead, fetchV2, fillPageV2, type RunCursor } from './sync-v2.js'
import {
  CountedViolation, FRAME_END, FRAME_HEADS, FRAME_MORE, FRAME_RECORD, SyncErrorCode, createReceiveCheck, decodeHeads,
  encodeHeads, fillPage, frame, packRecordFrames, planSync, syncErrorCode, type SyncResult, type SyncServiceComponents
} from './sync-wire.js'
import { SYNC2_PROTOCOL, SYNC_PROTOCOL } from './types.js'

export * from './sync-wire.js'

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
 *
 * /swarmtune/sync/2.0.0 (src/net/sync-v2.ts) is served beside it on the same service: the same
 * frames plus LOG_HEAD, so a run of an author's records costs the client one signature. A client
 * asks for 2.0.0 first and gets 1.0.0 from peers that do not speak it (multistream-select).
 */
/** Codes that blame the remote peer (counted as rejections); the others are ordinary failures. */
const BLAMEWORTHY = new Set<string>([
  SyncErrorCode.PROTOCOL, SyncErrorCode.OVERSIZE, SyncErrorCode.FLOOD, SyncErrorCode.LIMIT,
  SyncErrorCode.UNSOLICITED, SyncErrorCode.ORDER, SyncErrorCode.TIMEOUT, SyncErrorCode.BUSY,
  SyncErrorCode.RATE_LIMITED, SyncErrorCode.PROOF
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

export class SyncService {
  private readonly inbound = new Map<string, number>()
  private inboundTotal = 0
  private readonly outbound = new Map<string, Promise<SyncResult>>()
  private readonly sessions = new Set<SessionClock>()
  private stopped = false
  /** own signatures of records taken in through log heads, checked in the background (sync 2.0.0) */
  private readonly unchecked: UncheckedChecker

  constructor (private readonly c: SyncServiceComponents) {
    this.unchecked = new UncheckedChecker(c)
  }

  start (): void {
    this.stopped = false
    // records a previous run took in through log heads and did not check before it stopped
    void this.unchecked.kick()
  }

  /** check the own signatures of records taken in through log heads now (resolves when done) */
  async checkUnchecked (): Promise<void> { await this.unchecked.kick() }

  stop (): void {
    this.stopped = true
    this.unchecked.stop()
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
      await this.serve(stream, clock, stream.protocol === SYNC2_PROTOCOL ? 2 : 1)
      this.c.stats.inc(stream.protocol === SYNC2_PROTOCOL ? 'syncServedOkV2' : 'syncServedOk')
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

  private async serve (stream: Stream, clock: SessionClock, version: 1 | 2): Promise<void> {
    const { limits, config } = this.c
    const signal = clock.signal
    const lp = lpStream(stream, { maxDataLength: limits.maxHeadsFrameBytes, maxBufferSize: limits.maxHeadsFrameBytes + 4096 })
    const first = (await lp.read({ signal })).subarray()
    clock.kick()
    if (first[0] !== FRAME_HEADS) throw new SyncViolation(SyncErrorCode.PROTOCOL, `expected HEADS, got frame type ${first[0]}`)
    const req = decodeHeads(first.subarray(1), limits, version)
    const pageSize = Math.min(config.net.sync.pageSize, req.pageSize)
    const pageBytes = Math.min(limits.maxPageBytes, req.maxPageBytes)
    if (version === 2) await ensureOwnHead(this.c.store, this.c.self)
    const contiguous = await this.c.store.heads()
    const cursors: RunCursor[] = planSync(contiguous.keys(), req.heads)
    let sent = 0
    const nextPage = async (): Promise<{ frames: Uint8Array[], records: number }> => {
      const room = Math.min(pageSize, config.net.sync.maxRecordsPerSession - sent)
      if (room <= 0) return { frames: [], records: 0 }
      const page = version === 2
        ? await fillPageV2(this.c.store, cursors, contiguous, room, pageBytes)
        : await fillPage(this.c.store, cursors, room, pageBytes).then(ws => ({ frames: ws.map(w => frame(FRAME_RECORD, w)), records: ws.length }))
      // a 2.0.0 client that asked for it gets its records several to a frame, within its frame limit and ours
      if ((req.pack ?? 0) > 0) {
        const before = page.frames.length
        page.frames = packRecordFrames(page.frames, Math.min(req.pack ?? 0, limits.maxRecordFrameBytes))
        this.c.stats.inc('syncFramesSavedByPacking', before - page.frames.length)
      }
      sent += page.records
      return page
    }
    // 2.0.0: the client may let us send `ahead` pages past the one its last MORE asked for; its
    // MOREs still come one per END(1), so we read one per page once those credits are spent
    // (and leave the last `ahead` MOREs unread when the session ends)
    let credits = req.ahead ?? 0
    let page = await nextPage()
    for (;;) {
      const more = cursors.length > 0 && sent < config.net.sync.maxRecordsPerSession
      const frames = page.frames
      frames.push(frame(FRAME_END, Uint8Array.of(more ? 1 : 0)))
      await lp.writeV(frames, { signal })
      clock.kick()
      this.c.stats.inc('syncRecordsOut', page.records)
      if (!more) break
      // read the next page from the store while the client verifies this one
      const prefetch = nextPage()
      prefetch.catch(() => {})
      if (credits > 0) credits--
      else {
        const next = (await lp.read({ signal })).subarray()
        clock.kick()
        if (next.length !== 1 || next[0] !== FRAME_MORE) throw new SyncViolation(SyncErrorCode.PROTOCOL, 'expected MORE')
      }
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
      const v2 = (this.c.maxVersion ?? 2) >= 2 && this.c.store.frontier != null
      stream = await conn.newStream(v2 ? [SYNC2_PROTOCOL, SYNC_PROTOCOL] : SYNC_PROTOCOL, { signal: clock.signal })
      if (stream.protocol === SYNC2_PROTOCOL) {
        res.version = 2
        await fetchV2(stream, { c: this.c, clock, res, commit: async (ok, attested) => { await this.commit(ok, attested, res) } })
      } else await this.fetch(stream, clock, res)
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
      // check what came in through heads once the session is over, not competing with it
      if (res.attested === true && !this.stopped) void this.unchecked.kick()
    }
    return res
  }

  /** store one page's verified records (`attested`: checked through a log head, sync 2.0.0) */
  private async commit (ok: SignedRecord[], attested: SignedRecord[], res: SyncResult): Promise<void> {
    if (attested.length > 0) {
      // marked before they are stored, so no attested record is ever stored without its mark
      try {
        await this.c.store.markUnchecked?.(attested)
      } catch (err) {
        this.c.stats.inc('syncStoreErrors')
        this.c.stats.inc('syncIgnored', attested.length)
        this.c.log.error('marking %d record(s) unchecked failed: %s', attested.length, (err as Error)?.message)
        attested = []
      }
    }
    for (const [records, opts] of [[ok, {}], [attested, { attested: true }]] as const) {
      for (const o of await this.c.ingest.commit(records, 'sync', opts)) if (o.kind === 'inserted') res.inserted++
    }
    if (attested.length > 0) res.attested = true
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
