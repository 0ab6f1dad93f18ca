import { RECORD_SOURCES, recordVersionFor, type RecordBody, type RecordSource, type SignedRecord, type UnsignedBody } from '../records/types.js'
import { validateBody } from '../records/validate.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { ApiError } from '../contracts/api.js'
import type { CoreComponents } from './types.js'

/** The core control API routes: GET /status, GET /records, POST /import, GET /eventloop, GET /metrics. */

/** A record as the API and `history --json` show it. */
export interface RecordView {
  id: string
  author: string
  seq: number
  source: RecordSource
  timestamp: number
  body: RecordBody
}

export function recordView (r: SignedRecord): RecordView {
  return { id: r.id, author: r.body.author, seq: r.body.seq, source: r.body.source, timestamp: r.body.timestamp, body: r.body }
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

function intParam (q: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = q.get(name)
  if (raw == null || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new ApiError(400, 'E_BAD_PARAM', `${name} must be a positive integer`)
  return Math.min(n, max)
}

export async function statusOf (c: CoreComponents): Promise<Record<string, unknown>> {
  const counts = await c.store.counts()
  const out: Record<string, unknown> = {
    peerId: c.peerId.toString(),
    addresses: c.network.addresses(),
    api: c.api.url(),
    peers: c.network.peerCount(),
    ...counts,
    rejected: c.rejections.toJSON(),
    net: c.network.stats(),
    uptime: Math.round((Date.now() - c.startedAt) / 1000),
    ...(c.loop != null ? { eventLoop: c.loop.delay() } : {})
  }
  for (const [key, fn] of c.api.statusContributors) {
    try {
      out[key] = await fn()
    } catch (err) {
      out[key] = { error: { code: errorCode(err), message: errorMessage(err) } }
    }
  }
  return out
}

export function registerCoreRoutes (c: CoreComponents): void {
  const { api, store } = c

  api.route('GET', '/status', async () => ({ json: await statusOf(c) }))

  api.route('GET', '/records', async (req) => {
    const q = req.query
    const source = q.get('source') ?? undefined
    if (source != null && !RECORD_SOURCES.includes(source as RecordSource)) throw new ApiError(400, 'E_BAD_PARAM', `source must be one of ${RECORD_SOURCES.join(', ')}`)
    const order = q.get('order') ?? 'asc'
    if (order !== 'asc' && order !== 'desc') throw new ApiError(400, 'E_BAD_PARAM', 'order must be asc or desc')
    const page = await store.query({
      author: q.get('author') ?? undefined,
      modelId: q.get('model') ?? undefined,
      hardwareId: q.get('hardware') ?? undefined,
      source: source as RecordSource | undefined,
      limit: intParam(q, 'limit', 100, 10_000),
      cursor: q.get('cursor') ?? undefined,
      order
    })
    return { json: { records: page.records.map(recordView), cursor: page.cursor } }
  })

  api.route('POST', '/import', async (req) => {
    const author = c.peerId.toString()
    const items = parseImportPayload((await req.body()).toString('utf8'))
    const errors: ImportError[] = []
    const good: UnsignedBody[] = []
    for (const item of items) {
      if ('error' in item) { errors.push(item.error); continue }
      try {
        good.push(prepareImport(item.value, author))
      } catch (err) {
        errors.push({ line: item.line, code: errorCode(err), message: errorMessage(err) })
      }
    }
    const records = good.length > 0 ? await c.ownRecords(good) : []
    return { json: { imported: records.length, ids: records.map(r => r.id), errors } }
  })

  // event-loop delay over a chosen window (the attack harness asks for "since the attack began")
  api.route('GET', '/eventloop', async (req) => {
    if (c.loop == null) throw new ApiError(404, 'E_NOT_FOUND', 'no event-loop monitor')
    const raw = req.query.get('since')
    const since = raw == null || raw === '' ? undefined : Number(raw)
    if (since != null && !Number.isFinite(since)) throw new ApiError(400, 'E_BAD_PARAM', 'since must be ms since the epoch')
    return { json: c.loop.delay(since) }
  })

  // Prometheus text of the node's registry (src/node/metrics.ts): core, libp2p, gossipsub and service families
  api.route('GET', '/metrics', async () => ({ text: await c.metrics.metrics(), contentType: c.metrics.contentType }))
}
