import { StringDecoder } from 'node:string_decoder'
import { stableId } from '../records/stable-id.js'
import { recordVersionFor, type UnsignedBody } from '../records/types.js'
import { validateBody } from '../records/validate.js'
import { toWire, verifyWire } from '../records/sign.js'
import type { SignedRecord } from '../records/types.js'
import type { PutStatus, RecordStore } from '../store/types.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { ApiError } from '../contracts/api.js'
import type { OwnRecordsWriter } from '../contracts/records.js'

/**
 * POST /import as a stream (issue #18): lines are parsed as they arrive, signed and stored in
 * batches, with a yield to the event loop between slices, so a 15 MiB body neither freezes the
 * daemon nor builds a reply as large as itself: only the first MAX_REPORTED_ERRORS errors are
 * listed, the rest counted by code. Each line is keyed by the hash of its canonical body (the
 * key is stored with its record in one batch), so a retried import skips what is stored and
 * counts it in `duplicates` instead of signing it again.
 *
 * A line with a `wire` field (base64 of the signed envelope: `swarmtune export`, `history --json`,
 * test/fixtures/history-*.jsonl) is another peer's (or this node's earlier) signed record: it is
 * verified like a gossiped one and stored as it is — author, seq and signature kept, nothing
 * re-signed; a bad signature is that line's error. Stored again, it is a duplicate.
 */
export const IMPORT_MAX_BODY_BYTES = 16 * 1024 * 1024
export const MAX_REPORTED_ERRORS = 100
/** bodies signed and stored per batch */
const BATCH = 500
/** longest slice of parsing between two yields */
const SLICE_MS = 10

export interface ImportReport {
  imported: number
  /** lines whose body this node had imported before (or earlier in this payload) */
  duplicates: number
  ids: string[]
  /** the first MAX_REPORTED_ERRORS errors */
  errors: ImportError[]
  /** all errors */
  errorCount: number
  errorsByCode: Record<string, number>
  /** numbered lines (JSONL) or items (array) seen */
  lines: number
  /** of `imported`: signed records stored as they are (author, seq, signature kept) */
  signed?: number
  /** signed records that conflict with a stored one of the same author and seq (kept as evidence) */
  equivocations?: number
}

/** How signed records are stored: store.putMany, with the node's record events. */
export type SignedSink = (records: SignedRecord[]) => Promise<PutStatus[]>

export interface ImportDeps {
  author: string
  ownRecords: OwnRecordsWriter
  /** record ids stored under these keys (store.tagged) */
  tagged?: (keys: string[]) => Promise<Array<string | undefined>>
  /** where verified signed records go; without it, signed lines are refused */
  signed?: SignedSink
}

export interface ImportError { line: number, code: string, message: string }
export type ImportItem = { line: number, value: unknown } | { line: number, error: ImportError }

/** Pure: split an import payload (a JSON array, or JSON Lines) into numbered items. */
export function parseImportPayload (text: string): ImportItem[] {
  const trimmed = text.trimStart()
  if (trimmed.startsWith('[')) {
    let arr: unknown
    try {
      arr = JSON.parse(trimmed)
    } catch (err) {
      throw new ApiError(400, 'E_BAD_JSON', `payload looks like a JSON array but does not parse: ${errorMessage(err)}`)
    }
    if (!Array.isArray(arr)) throw new ApiError(400, 'E_BAD_JSON', 'payload must be a JSON array or JSON Lines')
    return arr.map((value, i) => ({ line: i + 1, value }))
  }
  const items: ImportItem[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    try {
      items.push({ line: i + 1, value: JSON.parse(line) })
    } catch (err) {
      items.push({ line: i + 1, error: { line: i + 1, code: 'E_MALFORMED', message: `not JSON: ${errorMessage(err)}` } })
    }
  })
  return items
}

/**
 * Pure: turn one imported value into an unsigned body this node will sign, or throw the
 * validation error. Author, seq and version are the signer's to set, so any given are dropped
 * (re-importing an exported history works); the source becomes 'import'.
 */
export function prepareImport (value: unknown, author: string, now = Date.now()): UnsignedBody {
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, 'E_MALFORMED', 'a record body must be a JSON object')
  const { v: _v, author: _a, seq: _s, ...rest } = value as Record<string, unknown>
  const unsigned = { ...rest, source: 'import' } as unknown as UnsignedBody
  validateBody({ ...unsigned, v: recordVersionFor(unsigned), author, seq: 1, timestamp: unsigned.timestamp ?? now }, now)
  return unsigned
}

/** A line that carries a signed record (`wire`), or an export without one. */
function signedWire (value: unknown): string | undefined {
  if (value == null || typeof value !== 'object' || Array.isArray(value)) return undefined
  const v = value as Record<string, unknown>
  if (typeof v.wire === 'string') return v.wire
  // a `history --json` entry of an older version: the body without its signature
  if (v.body != null && typeof v.body === 'object' && typeof v.author === 'string' && typeof v.seq === 'number') {
    throw new ApiError(400, 'E_UNSIGNED_EXPORT', 'this entry has no signature (`wire`): export with `swarmtune export` or this version\'s `history --json` to keep records signed')
  }
  return undefined
}

/** Verify one signed line: envelope, schema, signature, and the id when the line states one. */
export async function verifySignedLine (value: Record<string, unknown>, wire: string, now = Date.now()): Promise<SignedRecord> {
  const bytes = Buffer.from(wire, 'base64')
  if (bytes.length === 0 || bytes.toString('base64').replace(/=+$/, '') !== wire.replace(/=+$/, '')) throw new ApiError(400, 'E_MALFORMED', 'wire must be the base64 of a signed record')
  const record = await verifyWire(new Uint8Array(bytes), now)
  if (value.id != null && value.id !== record.id) throw new ApiError(400, 'E_ID_MISMATCH', `id ${String(value.id)} is not the record's id ${record.id}`)
  return record
}

/** The base64 envelope of a record, as export lines and `history --json` carry it. */
export function wireOf (record: SignedRecord): string {
  return Buffer.from(toWire(record)).toString('base64')
}

/** Signed records into a store as they are: the node's own as own (fsynced, never evicted), the rest as from peers. */
export function storeSink (store: Pick<RecordStore, 'putMany'>, self: string, onInserted?: (record: SignedRecord) => void): SignedSink {
  return async (records) => {
    const own = records.filter(r => r.body.author === self)
    const other = records.filter(r => r.body.author !== self)
    const byId = new Map<string, PutStatus>()
    if (own.length > 0) (await store.putMany(own, { own: true })).forEach((st, i) => byId.set(own[i].id, st))
    if (other.length > 0) (await store.putMany(other)).forEach((st, i) => byId.set(other[i].id, st))
    const statuses = records.map(r => byId.get(r.id) ?? 'duplicate')
    records.forEach((r, i) => { if (statuses[i] === 'inserted') onInserted?.(r) })
    return statuses
  }
}

export function importKey (body: UnsignedBody): string {
  return `import:${stableId(body, 32)}`
}

const yieldLoop = async (): Promise<void> => { await new Promise(resolve => { setImmediate(resolve) }) }

export interface Importer {
  item: (line: number, value: unknown) => Promise<void>
  fail: (line: number, code: string, message: string) => void
  /** yield to the event loop when the current slice of work is over SLICE_MS */
  pace: () => Promise<void>
  finish: () => Promise<ImportReport>
}

export function createImporter (deps: ImportDeps): Importer {
  const report: ImportReport = { imported: 0, duplicates: 0, ids: [], errors: [], errorCount: 0, errorsByCode: {}, lines: 0 }
  let batch: Array<{ body: UnsignedBody, key: string }> = []
  let signedBatch: SignedRecord[] = []
  const seen = new Set<string>()
  let sliceStart = Date.now()

  function fail (line: number, code: string, message: string): void {
    report.lines = Math.max(report.lines, line)
    report.errorCount++
    report.errorsByCode[code] = (report.errorsByCode[code] ?? 0) + 1
    if (report.errors.length < MAX_REPORTED_ERRORS) report.errors.push({ line, code, message })
  }

  async function flushSigned (): Promise<void> {
    const todo = signedBatch
    signedBatch = []
    if (todo.length === 0 || deps.signed == null) return
    const statuses = await deps.signed(todo)
    statuses.forEach((st, i) => {
      if (st === 'inserted') {
        report.imported++
        report.signed = (report.signed ?? 0) + 1
        report.ids.push(todo[i].id)
      } else if (st === 'equivocation') {
        report.equivocations = (report.equivocations ?? 0) + 1
      } else {
        report.duplicates++
      }
    })
  }

  async function signedItem (line: number, value: Record<string, unknown>, wire: string): Promise<void> {
    if (deps.signed == null) { fail(line, 'E_SIGNED_UNSUPPORTED', 'signed records cannot be imported here'); return }
    let record: SignedRecord
    try {
      record = await verifySignedLine(value, wire)
    } catch (err) {
      fail(line, errorCode(err), errorMessage(err))
      return
    }
    if (seen.has(record.id)) { report.duplicates++; return }
    seen.add(record.id)
    signedBatch.push(record)
    if (signedBatch.length >= BATCH) await flushSigned()
  }

  async function flush (): Promise<void> {
    await flushSigned()
    const todo = batch
    batch = []
    if (todo.length === 0) return
    const stored = deps.tagged != null ? await deps.tagged(todo.map(t => t.key)) : []
    const fresh = todo.filter((_, i) => stored[i] == null)
    report.duplicates += todo.length - fresh.length
    if (fresh.length === 0) return
    const records = await deps.ownRecords(fresh.map(t => t.body), { tags: fresh.map(t => t.key) })
    report.imported += records.length
    for (const r of records) report.ids.push(r.id)
  }

  async function item (line: number, value: unknown): Promise<void> {
    report.lines = Math.max(report.lines, line)
    let body: UnsignedBody
    try {
      const wire = signedWire(value)
      if (wire != null) { await signedItem(line, value as Record<string, unknown>, wire); return }
      body = prepareImport(value, deps.author)
    } catch (err) {
      fail(line, errorCode(err), errorMessage(err))
      return
    }
    const key = importKey(body)
    if (seen.has(key)) { report.duplicates++; return }
    seen.add(key)
    batch.push({ body, key })
    if (batch.length >= BATCH) await flush()
  }

  async function pace (): Promise<void> {
    if (Date.now() - sliceStart < SLICE_MS) return
    await yieldLoop()
    sliceStart = Date.now()
  }

  return {
    item,
    fail,
    pace,
    async finish () {
      await flush()
      return report
    }
  }
}

/** One JSONL line: bodies are objects, so anything else is refused without parsing it. */
async function jsonLine (imp: Importer, n: number, raw: string): Promise<void> {
  const line = raw.trim()
  if (line === '' || line.startsWith('#')) return
  if (!line.startsWith('{')) { imp.fail(n, 'E_MALFORMED', 'a record body must be a JSON object'); return }
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (err) {
    imp.fail(n, 'E_MALFORMED', `not JSON: ${errorMessage(err)}`)
    return
  }
  await imp.item(n, value)
}

/**
 * Import a JSON array or JSON Lines payload arriving in chunks. On a store error part-way, the
 * error is thrown with `report` attached: what was stored before it stays stored.
 */
export async function importStream (chunks: AsyncIterable<Buffer>, deps: ImportDeps): Promise<ImportReport> {
  const imp = createImporter(deps)
  const decoder = new StringDecoder('utf8')
  let mode: 'unknown' | 'array' | 'lines' = 'unknown'
  let pending = ''
  let lineNo = 0
  const arrayParts: string[] = []
  try {
    for await (const chunk of chunks) {
      let text = pending + decoder.write(chunk)
      pending = ''
      if (mode === 'unknown') {
        const start = text.trimStart()
        if (start === '') { pending = text; continue }
        mode = start.startsWith('[') ? 'array' : 'lines'
      }
      if (mode === 'array') { arrayParts.push(text); continue }
      let from = 0
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
        await jsonLine(imp, ++lineNo, text.slice(from, nl))
        from = nl + 1
        if ((lineNo & 63) === 0) await imp.pace()
      }
      pending = text.slice(from)
      text = ''
    }
    const rest = pending + decoder.end()
    if (mode === 'array') {
      let arr: unknown
      try {
        arr = JSON.parse(arrayParts.join('') + rest)
      } catch (err) {
        throw new ApiError(400, 'E_BAD_JSON', `payload looks like a JSON array but does not parse: ${errorMessage(err)}`)
      }
      if (!Array.isArray(arr)) throw new ApiError(400, 'E_BAD_JSON', 'payload must be a JSON array or JSON Lines')
      for (let i = 0; i < arr.length; i++) {
        await imp.item(i + 1, arr[i])
        if ((i & 63) === 0) await imp.pace()
      }
    } else if (rest !== '') {
      await jsonLine(imp, ++lineNo, rest)
    }
    return await imp.finish()
  } catch (err) {
    // keep what is known: the caller reports partial success
    const partial = await imp.finish().catch(() => undefined)
    throw Object.assign(err as object, { report: partial })
  }
}
