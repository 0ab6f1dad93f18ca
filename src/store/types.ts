import type { SignedRecord, RecordSource } from '../records/types.js'
import type { Frontier } from '../records/merkle.js'
import type { LogHead } from '../records/log-head.js'

/**
 * The federated history in LevelDB. Implemented by src/store/record-store.ts (issue #2).
 * Everything that reads history (meta-model, votes, sync, API) goes through this interface.
 */
export type PutStatus = 'inserted' | 'duplicate' | 'equivocation'

export interface PutOptions {
  /** the node's own record: fsync before returning, never evicted by retention */
  own?: boolean
  /**
   * One key per record (or undefined), written in the same atomic batch as the record it names:
   * an import's per-line key, so a retried import can tell which lines are stored (issue #18)
   */
  tags?: Array<string | undefined>
}

/** What GET /status shows of the store: a failed write marks it unhealthy until a write succeeds. */
export interface StoreHealth {
  healthy: boolean
  error: { code: string, message: string } | null
  /** failed writes since start */
  writeErrors: number
  /** reopens that brought the store back */
  recoveries: number
}

export interface RecordQuery {
  author?: string
  modelId?: string
  hardwareId?: string
  source?: RecordSource
  /** page size (default 100) */
  limit?: number
  /** opaque cursor returned by the previous page */
  cursor?: string
  /** insertion order (per-author seq order when `author` is given); default 'asc' */
  order?: 'asc' | 'desc'
}

export interface RecordPage {
  records: SignedRecord[]
  /** present when more records follow */
  cursor?: string
}

export interface EquivocationEvidence {
  author: string
  seq: number
  /** ids of the conflicting records (at least two) */
  ids: string[]
}

/** a record taken in through a log head whose own signature is not checked yet (sync 2.0.0) */
export interface UncheckedMark {
  author: string
  seq: number
  id: string
}

export interface StoreCounts {
  records: number
  own: number
  authors: number
  equivocations: number
}

export interface RecordStore {
  start(): Promise<void>
  stop(): Promise<void>
  /**
   * idempotent: storing a known id again returns 'duplicate' (also for a record evicted by
   * retention, and for a conflicting record already held as evidence); a second, different
   * record for one author+seq is kept as evidence and returns 'equivocation'
   */
  put(record: SignedRecord, opts?: PutOptions): Promise<PutStatus>
  /** several records in one atomic batch (one fsync when own): sync pages, bulk import */
  putMany(records: SignedRecord[], opts?: PutOptions): Promise<PutStatus[]>
  get(id: string): Promise<SignedRecord | undefined>
  has(id: string): Promise<boolean>
  /** author → highest seq N such that seqs 1..N are all stored (the contiguous head) */
  heads(): Promise<Map<string, number>>
  /** records of one author with seq > afterSeq, ascending, at most `limit` */
  bySeq(author: string, afterSeq: number, limit: number): Promise<SignedRecord[]>
  /** the same as stored wire envelopes, not decoded (what a sync server sends); optional for test stores */
  wiresBySeq?(author: string, afterSeq: number, limit: number): Promise<Array<{ seq: number, wire: Uint8Array }>>
  /** next free sequence number for an author (used for the node's own records) */
  nextSeq(author: string): Promise<number>
  query(q: RecordQuery): Promise<RecordPage>
  /** every stored record, in no particular order (training, eval, export) */
  all(): AsyncIterable<SignedRecord>
  counts(): Promise<StoreCounts>
  evidence(): Promise<EquivocationEvidence[]>
  /** small JSON documents kept beside the records: model snapshots, trust, votes */
  getMeta<T = unknown>(key: string): Promise<T | undefined>
  putMeta(key: string, value: unknown): Promise<void>
  /** the record ids stored under these PutOptions.tags (undefined where none); optional for test stores */
  tagged?(tags: string[]): Promise<Array<string | undefined>>
  /** write health (issue #18); optional for test stores */
  health?(): StoreHealth
  /*
   * Sync 2.0.0 (docs/records.md); optional for test stores, whose peers then sync as 1.0.0 does.
   */
  /**
   * the Merkle frontier of the author's records 1..head (head = the contiguous head; length 0 for
   * an unknown author), or undefined when it cannot be known (a record of 1..head was evicted
   * before the head reached it)
   */
  frontier?(author: string): Promise<Frontier | undefined>
  /**
   * keep a log head whose signature and root were checked; a second head of the same length with
   * another root is kept as evidence ('equivocation')
   */
  putLogHead?(head: LogHead): Promise<PutStatus>
  /** the author's stored log heads longer than `afterLength` (default 0), ascending by length; pruned on write to those a client can use */
  logHeads?(author: string, afterLength?: number): Promise<LogHead[]>
  /** keep a checked head that contradicts records the author signed, as evidence against the author */
  putLogHeadEvidence?(head: LogHead): Promise<void>
  /** heads kept as evidence (conflicting heads, heads contradicting signed records) */
  logHeadEvidence?(): Promise<LogHead[]>
  /**
   * mark records taken in through a log head, before they are put (one batch): their own
   * signatures are checked later, and until then they are not sent to a peer that checks records
   * one by one
   */
  markUnchecked?(records: SignedRecord[]): Promise<void>
  /** the lowest marked seq of the author above `afterSeq`, or undefined */
  firstUnchecked?(author: string, afterSeq: number): Promise<number | undefined>
  /** up to `limit` marks, in key order */
  unchecked?(limit: number): Promise<UncheckedMark[]>
  /** clear marks of checked records; `forged` records (own signature broken) are dropped, tombstoned in the log */
  settleUnchecked?(checked: UncheckedMark[], forged?: UncheckedMark[]): Promise<void>
}
