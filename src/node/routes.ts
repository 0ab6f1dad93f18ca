import { RECORD_SOURCES, type RecordBody, type RecordSource, type SignedRecord } from '../records/types.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { ApiError } from '../contracts/api.js'
import type { CoreComponents } from './types.js'
import { IMPORT_MAX_BODY_BYTES, importStream, storeSink, wireOf, type ImportReport } from './import.js'

/** The core control API routes: GET /status, GET /records, POST /import, GET /eventloop, GET /metrics. */

/** A record as the API and `history --json` show it. */
export interface RecordView {
  id: string
  author: string
  seq: number
  source: RecordSource
  timestamp: number
  body: RecordBody
  /** base64 of the signed envelope: what `swarmtune import` verifies and stores as it is */
  wire: string
}

export function recordView (r: SignedRecord): RecordView {
  return { id: r.id, author: r.body.author, seq: r.body.seq, source: r.body.source, timestamp: r.body.timestamp, body: r.body, wire: wireOf(r) }
}

// the import payload helpers live with the streaming import; re-exported for existing callers
export { parseImportPayload, prepareImport, type ImportError, type ImportItem } from './import.js'

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

  // signed records are stored as they are (own ones as own: never evicted), with the record event
  const author = c.peerId.toString()
  const signed = storeSink(store, author, record => { c.events.dispatchEvent(new CustomEvent('record', { detail: { record, via: 'import' } })) })

  // streamed, batched and yielding; retries skip lines already stored (src/node/import.ts)
  api.route('POST', '/import', async (req) => {
    try {
      return { json: await importStream(req.stream(), { author, ownRecords: c.ownRecords, signed, tagged: store.tagged != null ? async keys => await store.tagged!(keys) : undefined }) }
    } catch (err) {
      const report = (err as { report?: ImportReport }).report
      if (report == null || report.imported + report.duplicates === 0) throw err
      // part of the payload is stored: say so, with the error's status and code
      const status = err instanceof ApiError ? err.status : ({ E_STORE_FULL: 507, E_STORE_IO: 503 } as Record<string, number>)[errorCode(err)] ?? 500
      return { status, json: { ...report, error: { code: errorCode(err), message: status === 500 ? 'internal error' : errorMessage(err) } } }
    }
  }, { maxBodyBytes: IMPORT_MAX_BODY_BYTES })

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
