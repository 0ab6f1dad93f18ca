import type { SignedRecord, UnsignedBody } from '../records/types.js'

/** How a record reached this node: its own (import, bench, serving) or from a peer. */
export type RecordVia = 'own' | 'gossip' | 'sync' | 'import'
export interface RecordEventDetail { record: SignedRecord, via: RecordVia }

/**
 * The node's record events: emits 'record' (CustomEvent<RecordEventDetail>) once for every record
 * newly stored, own or from the network.
 */
export type RecordEvents = EventTarget

/**
 * The one path for every local record (import, bench, serving): validate, sign with the next
 * seq, store durably as own, then gossip. Throws RecordValidationError on an invalid body
 * (nothing is stored then). Resolves with the signed records in order.
 */
export type OwnRecordsWriter = (bodies: UnsignedBody[], opts?: OwnRecordsOptions) => Promise<SignedRecord[]>
export interface OwnRecordsOptions {
  /** one key per body, stored atomically with its record (import line keys: store PutOptions.tags) */
  tags?: Array<string | undefined>
}
export type OwnRecordWriter = (body: UnsignedBody) => Promise<SignedRecord>
