import { decodeWireUnverified, verifyWire } from '../records/sign.js'
import { RecordErrorCode, RecordValidationError } from '../records/errors.js'
import type { SignedRecord } from '../records/types.js'
import type { RecordStore } from '../store/types.js'
import type { Counters } from '../util/counters.js'
import { SwarmtuneError, errorCode } from '../util/errors.js'
import type { Logger } from '../util/log.js'
import type { Pacer } from './pacer.js'
import { VerifyErrorCode } from './verify-pool.js'

/**
 * The one path every untrusted record from the network takes, gossip and sync alike:
 * verifyWire() (envelope, size, schema, plausibility, canonical form, signature) → optional
 * transport check → store.put() → counters. Storing before the gossip validator returns Accept
 * means a record is durable before this node forwards it.
 */
export type IngestVia = 'gossip' | 'sync'

export type IngestOutcome =
  | { kind: 'inserted', record: SignedRecord }
  | { kind: 'duplicate', record: SignedRecord }
  | { kind: 'equivocation', record: SignedRecord }
  /** not the sender's fault (a clock ahead of ours, a store failure): drop, do not penalize */
  | { kind: 'ignored', code: string }
  /** invalid input: drop, count, penalize the sender */
  | { kind: 'rejected', code: string }

/**
 * Codes that are not proof of a misbehaving sender (the record may become valid later; or, for
 * E_IMPLAUSIBLE_SMALL, a rule newer than v1 peers, which still accept and relay such records).
 */
const IGNORABLE = new Set<string>([RecordErrorCode.FUTURE_TIMESTAMP, RecordErrorCode.IMPLAUSIBLE_SMALL, VerifyErrorCode.RETRY, VerifyErrorCode.BUSY])

/** Pure: classify a verifyWire()/check failure. Unknown (non-validation) errors are ours → ignored. */
export function classifyError (err: unknown): IngestOutcome & { kind: 'ignored' | 'rejected' } {
  const code = errorCode(err)
  if (IGNORABLE.has(code)) return { kind: 'ignored', code }
  if (err instanceof RecordValidationError || err instanceof SyncViolation) return { kind: 'rejected', code }
  return { kind: 'ignored', code: 'E_INTERNAL' }
}

/** A transport-level check failed (e.g. sync sent a record the client did not ask for). */
export class SyncViolation extends SwarmtuneError {}

export interface IngestComponents {
  store: RecordStore
  rejections: Counters
  stats: Counters
  log: Logger
  /** `attested`: a sync 2.0.0 record checked through its author's log head, not on its own */
  onRecord?: (record: SignedRecord, via: IngestVia, attested?: boolean) => void
  /** time-slices verification (src/net/pacer.ts) so a burst cannot hold the event loop */
  pacer?: Pacer
  /**
   * verifies on other threads (src/net/verify-pool.ts): verify() then only waits, so the pacer
   * is not used for it (the pacer runs one job at a time and would serialize the pool)
   */
  verifier?: RecordVerifier
}

/** verifyWire() done elsewhere: resolves with the record or throws what verifyWire throws. */
export interface RecordVerifier {
  verify: (wire: Uint8Array, now?: number) => Promise<SignedRecord>
  /** every check but the signature (sync 2.0.0 run records); optional for test verifiers */
  check?: (wire: Uint8Array, now?: number) => Promise<SignedRecord>
}

export interface IngestOptions {
  /** extra check between verification and storage; throw a SyncViolation to refuse */
  check?: (record: SignedRecord) => void
  now?: number
}

/** The verification half: a verified record, or the refusal (already counted). */
export type Verified = { kind: 'verified', record: SignedRecord } | (IngestOutcome & { kind: 'ignored' | 'rejected' })

export interface Ingest {
  /** verify + store one record (gossip: the record is durable before the validator returns) */
  (wire: Uint8Array, via: IngestVia, opts?: IngestOptions): Promise<IngestOutcome>
  /** the same steps split in two, so sync can verify a page record by record and store it in one batch */
  verify: (wire: Uint8Array, via: IngestVia, opts?: IngestOptions) => Promise<Verified>
  /**
   * verify a page at once (all of it in flight on the pool); `check` still runs on each record in
   * the given order, after its signature, so an order rule sees the records as they were sent
   */
  verifyMany: (items: Array<Uint8Array | Promise<SignedRecord>>, via: IngestVia, opts?: IngestOptions) => Promise<Verified[]>
  /**
   * start verifying one wire now, uncounted (envelope, schema, signature; no `check`): sync starts
   * each record as it arrives and hands the promises to verifyMany when its page ends
   */
  begin: (wire: Uint8Array, opts?: IngestOptions) => Promise<SignedRecord>
  /**
   * every check but the signature, uncounted, on the pool when there is one: only for sync 2.0.0
   * run records, whose bytes a log head vouches for (src/net/sync-v2.ts)
   */
  checkBody: (wire: Uint8Array) => Promise<SignedRecord>
  /** store verified records; `attested`: checked through a signed log head (sync 2.0.0), see onRecord */
  commit: (records: SignedRecord[], via: IngestVia, opts?: { attested?: boolean }) => Promise<IngestOutcome[]>
}

export function createIngest (c: IngestComponents): Ingest {
  const refuse = (err: unknown, via: IngestVia): Verified => {
    const out = classifyError(err)
    // every refusal is counted by code, ignorable ones included (status shows them)
    c.rejections.inc(out.code)
    c.stats.inc(`${via}${out.kind === 'rejected' ? 'Rejected' : 'Ignored'}`)
    c.log('%s record refused: %s %s', via, out.code, (err as Error)?.message)
    return out
  }

  const verify = async (wire: Uint8Array, via: IngestVia, opts: IngestOptions = {}): Promise<Verified> => {
    c.stats.inc(`${via}Received`)
    try {
      const check = async (): Promise<SignedRecord> => {
        const record = c.verifier != null ? await c.verifier.verify(wire, opts.now) : await verifyWire(wire, opts.now)
        opts.check?.(record)
        return record
      }
      const record = c.pacer != null && c.verifier == null ? await c.pacer.run(check) : await check()
      return { kind: 'verified', record }
    } catch (err) {
      return refuse(err, via)
    }
  }

  const begin = (wire: Uint8Array, opts: IngestOptions = {}): Promise<SignedRecord> => {
    const verifier = c.verifier
    const p = verifier != null
      ? verifier.verify(wire, opts.now)
      : c.pacer != null ? c.pacer.run(async () => await verifyWire(wire, opts.now)) : verifyWire(wire, opts.now)
    // the caller may look at it only later (verifyMany): no unhandled rejection meanwhile
    p.catch(() => {})
    return p
  }

  const checkBody = (wire: Uint8Array): Promise<SignedRecord> => {
    const p = c.verifier?.check != null ? c.verifier.check(wire) : Promise.resolve().then(() => decodeWireUnverified(wire))
    p.catch(() => {})
    return p
  }

  const verifyMany = async (items: Array<Uint8Array | Promise<SignedRecord>>, via: IngestVia, opts: IngestOptions = {}): Promise<Verified[]> => {
    c.stats.inc(`${via}Received`, items.length)
    const settled = await Promise.allSettled(items.map(async x => await (x instanceof Uint8Array ? begin(x, opts) : x)))
    return settled.map((s): Verified => {
      try {
        if (s.status === 'rejected') throw s.reason
        opts.check?.(s.value)
        return { kind: 'verified', record: s.value }
      } catch (err) {
        return refuse(err, via)
      }
    })
  }

  const commit = async (records: SignedRecord[], via: IngestVia, opts: { attested?: boolean } = {}): Promise<IngestOutcome[]> => {
    if (records.length === 0) return []
    let statuses
    try {
      statuses = records.length === 1 ? [await c.store.put(records[0])] : await c.store.putMany(records)
    } catch (err) {
      // a store failure (shutting down, disk full) is not the sender's fault
      c.stats.inc(`${via}StoreErrors`)
      c.stats.inc(`${via}Ignored`, records.length)
      c.log.error('storing %d record(s) failed: %s', records.length, (err as Error)?.message)
      return records.map(() => ({ kind: 'ignored', code: errorCode(err) }))
    }
    return records.map((record, i): IngestOutcome => {
      switch (statuses[i]) {
        case 'inserted':
          c.stats.inc(`${via}Accepted`)
          try { c.onRecord?.(record, via, opts.attested) } catch (err) { c.log.error('onRecord threw: %s', (err as Error)?.message) }
          return { kind: 'inserted', record }
        case 'equivocation':
          c.stats.inc(`${via}Equivocations`)
          return { kind: 'equivocation', record }
        default:
          c.stats.inc(`${via}Duplicates`)
          return { kind: 'duplicate', record }
      }
    })
  }

  const ingest = async (wire: Uint8Array, via: IngestVia, opts: IngestOptions = {}): Promise<IngestOutcome> => {
    const v = await verify(wire, via, opts)
    if (v.kind !== 'verified') return v
    return (await commit([v.record], via))[0]
  }
  return Object.assign(ingest, { verify, verifyMany, begin, checkBody, commit })
}
