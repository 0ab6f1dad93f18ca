import type { Connection, PeerId } from '@libp2p/interface'
import { checkPeerId } from '../records/validate.js'
import { toWire } from '../records/sign.js'
import type { SignedRecord } from '../records/types.js'
import type { LogHead } from '../records/log-head.js'
import type { RecordStore } from '../store/types.js'
import type { Counters } from '../util/counters.js'
import { errorCode } from '../util/errors.js'
import type { Logger } from '../util/log.js'
import { SyncViolation, type Ingest } from './ingest.js'
import type { NetworkConfig, NetworkGuard, NetworkLimits } from './types.js'

/*
 * The frames and pure parts both sync versions share (src/net/sync.ts: 1.0.0 and the service;
 * src/net/sync-v2.ts: 2.0.0 runs). Frame layout and messages: see src/net/sync.ts.
 */
export const FRAME_HEADS = 1
export const FRAME_RECORD = 2
export const FRAME_END = 3
export const FRAME_MORE = 4
/**
 * 2.0.0, only to a client whose HEADS asked with `pack`: several RECORD payloads in one frame,
 * each as length (u32 BE) ‖ wire. The client takes each as it takes a RECORD frame.
 */
export const FRAME_RECORDS = 6

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
  CLOSED: 'E_SYNC_CLOSED',
  /** 2.0.0: a log head that does not decode or verify, a run that does not continue its author's log */
  PROOF: 'E_SYNC_PROOF',
  /** 2.0.0: an author's signed head disagrees with the log of records it signed (charged to the author) */
  HEAD_CONFLICT: 'E_SYNC_HEAD_CONFLICT'
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
  /**
   * 2.0.0, optional: pages the server may send past the one the client's last MORE asked for
   * (the client buffers ahead + 1 pages). Absent, or a value a server does not know (not an
   * integer 0..MAX_PAGES_AHEAD), is mapped to 0: one page per MORE, as before.
   */
  ahead?: number
  /**
   * 2.0.0, optional: the largest RECORDS frame (bytes, type byte included) the client takes, asking
   * the server to pack records several to a frame. Absent or a value a server does not know is
   * mapped to 0: one RECORD frame per record, as before (a server of the previous release ignores it).
   */
  pack?: number
}

/** least `pack` a server honours: below it a frame would hold too few records to be worth it */
export const MIN_PACK_BYTES = 4096

/** most pages a 2.0.0 server sends ahead of the client's MORE (each page ≤ maxPageBytes) */
export const MAX_PAGES_AHEAD = 2

/**
 * Pure: the client's heads message. Over `maxAuthors`, the authors with the highest heads are
 * declared (they cost the most to resend); the rest are synced from seq 1 and arrive as duplicates.
 */
export function encodeHeads (msg: HeadsMessage, maxAuthors: number, version: 1 | 2 = 1): Uint8Array {
  let entries = [...msg.heads.entries()].filter(([, h]) => h > 0)
  if (entries.length > maxAuthors) entries = entries.sort((a, b) => b[1] - a[1]).slice(0, maxAuthors)
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const json = JSON.stringify({ v: version, pageSize: msg.pageSize, maxPageBytes: msg.maxPageBytes, ...(version === 2 && msg.ahead != null ? { ahead: msg.ahead } : {}), ...(version === 2 && msg.pack != null && msg.pack > 0 ? { pack: msg.pack } : {}), heads: entries })
  return frame(FRAME_HEADS, new TextEncoder().encode(json))
}

/** Pure: parse and bound an untrusted heads message (payload after the type byte). */
export function decodeHeads (payload: Uint8Array, limits: Pick<NetworkLimits, 'maxHeadsAuthors' | 'maxRecordFrameBytes'>, version: 1 | 2 = 1): HeadsMessage {
  const bad = (why: string): never => { throw new SyncViolation(SyncErrorCode.PROTOCOL, `bad heads message: ${why}`) }
  let v: unknown
  try { v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) } catch { bad('not UTF-8 JSON') }
  if (v == null || typeof v !== 'object' || Array.isArray(v)) bad('not an object')
  const o = v as Record<string, unknown>
  if (o.v !== version) bad('unknown version')
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
  // unknown values are mapped, not rejected: a newer client may ask for more than this server sends
  const ahead = version === 2 && isInt(o.ahead, 0, Number.MAX_SAFE_INTEGER) ? Math.min(o.ahead, MAX_PAGES_AHEAD) : 0
  const pack = version === 2 && isInt(o.pack, MIN_PACK_BYTES, Number.MAX_SAFE_INTEGER) ? o.pack : 0
  return { pageSize: o.pageSize as number, maxPageBytes: o.maxPageBytes as number, heads, ahead, pack }
}

/**
 * Pure: a page's frames with runs of RECORD frames packed into RECORDS frames of at most
 * `maxFrameBytes` (type byte included); other frames stay where they are, in order, and a record
 * too large to share a frame stays a RECORD frame. One frame per ~50 records instead of one per
 * record: the client's frame reads were a fifth of its main thread in a catch-up profile.
 */
export function packRecordFrames (frames: Uint8Array[], maxFrameBytes: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let group: Uint8Array[] = []
  let size = 1
  const flush = (): void => {
    if (group.length === 0) return
    const buf = new Uint8Array(size)
    const view = new DataView(buf.buffer)
    buf[0] = FRAME_RECORDS
    let off = 1
    for (const w of group) {
      view.setUint32(off, w.length)
      buf.set(w, off + 4)
      off += 4 + w.length
    }
    out.push(buf)
    group = []
    size = 1
  }
  for (const f of frames) {
    const w = f.subarray(1)
    // a RECORDS frame of this record alone: type byte, length, wire
    if (f[0] !== FRAME_RECORD || 1 + 4 + w.length > maxFrameBytes) { flush(); out.push(f); continue }
    if (size + 4 + w.length > maxFrameBytes) flush()
    group.push(w)
    size += 4 + w.length
  }
  flush()
  return out
}

/** Pure: the wires of an untrusted RECORDS payload (after the type byte); a malformed one is a protocol violation. */
export function unpackRecords (payload: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  const view = new DataView(payload.buffer, payload.byteOffset, payload.length)
  let off = 0
  while (off < payload.length) {
    if (off + 4 > payload.length) throw new SyncViolation(SyncErrorCode.PROTOCOL, 'RECORDS frame: a length cut short')
    const n = view.getUint32(off)
    if (n === 0 || off + 4 + n > payload.length) throw new SyncViolation(SyncErrorCode.PROTOCOL, `RECORDS frame: a record of ${n} bytes at ${off} does not fit`)
    out.push(payload.subarray(off + 4, off + 4 + n))
    off += 4 + n
  }
  if (out.length === 0) throw new SyncViolation(SyncErrorCode.PROTOCOL, 'RECORDS frame without records')
  return out
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
export interface PageSource { bySeq: RecordStore['bySeq'], wiresBySeq?: RecordStore['wiresBySeq'], firstUnchecked?: RecordStore['firstUnchecked'] }

/** A log's wires after `after`: undecoded when the store can (a server sends bytes, it needs no bodies). */
export async function readWires (src: PageSource, author: string, after: number, limit: number): Promise<Array<{ seq: number, wire: Uint8Array }>> {
  if (src.wiresBySeq != null) return await src.wiresBySeq(author, after, limit)
  return (await src.bySeq(author, after, limit)).map(r => ({ seq: r.body.seq, wire: toWire(r) }))
}

/**
 * A log's wires to send on their own (1.0.0, and 2.0.0 outside runs), where the client checks
 * each record's signature: they stop before the first record taken in through a log head whose
 * own signature this node has not checked yet (sync 2.0.0), so a short list ends the author for
 * this session and the rest follows once the background check cleared it.
 */
export async function readLooseWires (src: PageSource, author: string, after: number, limit: number): Promise<Array<{ seq: number, wire: Uint8Array }>> {
  const recs = await readWires(src, author, after, limit)
  if (recs.length === 0 || src.firstUnchecked == null) return recs
  const first = await src.firstUnchecked(author, after)
  return first == null ? recs : recs.filter(r => r.seq < first)
}

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
    const recs = await readLooseWires(src, cur.author, cur.after, want)
    let full = false
    for (const { seq, wire: w } of recs) {
      if (out.length > 0 && bytes + w.length > maxBytes) { full = true; break }
      out.push(w)
      bytes += w.length
      cur.after = seq
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
export class CountedViolation extends SyncViolation {}

export interface SyncResult {
  peer: string
  ok: boolean
  /** records received / newly stored in this session */
  received: number
  inserted: number
  pages: number
  code?: string
  /** the sync version the session ran (2 = /swarmtune/sync/2.0.0) */
  version?: 1 | 2
  /** records were taken in through log heads (their own signatures are checked after the session) */
  attested?: boolean
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
  /** this node as an author: it signs a log head over its own log when serving 2.0.0 */
  self?: { author: string, sign: (length: number, root: Uint8Array) => Promise<LogHead> }
  /** highest sync version this node speaks as a client (net.sync.maxVersion, default 2) */
  maxVersion?: 1 | 2
  /** pass on to gossip a record taken in through a log head once its own signature is checked */
  relayChecked?: (record: SignedRecord) => void
}

