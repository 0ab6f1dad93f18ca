import type { SignedRecord, RecordSource } from '../records/types.js'

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
}
