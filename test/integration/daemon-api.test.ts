import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApi } from '../../src/node/api.js'
import { ApiError, type ControlApi } from '../../src/contracts/api.js'
import { loadConfig } from '../../src/node/config.js'
import { createDaemon, type Daemon } from '../../src/node/daemon.js'
import type { RecordEventDetail } from '../../src/contracts/records.js'
import type { CoreComponents } from '../../src/node/types.js'
import { Gauge } from 'prom-client'
import { parsePrometheus } from '../helpers/prometheus.js'

type ServiceFactory = (c: CoreComponents) => { start: () => void, stop: () => void }
import { synthBodies } from '../../src/records/synthetic.js'

/* One daemon in this process (real LevelDB, real libp2p on 127.0.0.1): the control API contract. */
let dir: string
let daemon: Daemon
let base: string
const events: RecordEventDetail[] = []
const lifecycle: string[] = []

// a service as other engineers add them: extends the API, contributes to /status and /metrics
const probe: ServiceFactory = (c) => ({
  start () {
    lifecycle.push('start')
    c.events.addEventListener('record', e => { events.push((e as CustomEvent<RecordEventDetail>).detail) })
  },
  stop () { lifecycle.push('stop') }
})
const extendApi: ServiceFactory = (c) => {
  c.api.route('POST', '/echo', async req => ({ json: await req.json() }))
  c.api.route('GET', '/boom', () => { throw new Error('secret detail') })
  c.api.route('GET', '/teapot', () => { throw new ApiError(418, 'E_TEAPOT', 'short and stout') })
  c.api.statusContributors.set('snapshot', () => ({ trees: 7 }))
  new Gauge({ name: 'swarmtune_probe', help: 'a service of its own', registers: [c.metrics] }).set(1) // eslint-disable-line no-new
  return { start () {}, stop () {} }
}

async function get (path: string): Promise<{ status: number, body: any, type: string }> {
  const res = await fetch(base + path)
  const type = res.headers.get('content-type') ?? ''
  return { status: res.status, type, body: type.includes('json') ? await res.json() : await res.text() }
}
const JSON_TYPE = { 'content-type': 'application/json' }
async function post (path: string, body: string): Promise<{ status: number, body: any }> {
  const res = await fetch(base + path, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  return { status: res.status, body: await res.json() }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swarmtune-api-'))
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, net: { listen: ['/ip4/127.0.0.1/tcp/0'], localTestbed: true }, api: { port: 0 } } })
  daemon = createDaemon(config, { services: [], extraServices: [probe, extendApi] })
  await daemon.start()
  base = daemon.components.api.url()
})

afterAll(async () => {
  await daemon?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('control API', () => {
  it('imports a JSON array and JSON Lines, signs as this node with consecutive seqs, reports bad items by line', async () => {
    const bodies = synthBodies(3, 5)
    const r1 = await post('/import', JSON.stringify(bodies))
    expect(r1.status).toBe(200)
    expect(r1.body.imported).toBe(3)
    expect(r1.body.errors).toEqual([])
    const bad = { ...bodies[0], result: { ...bodies[0].result, outputTokensPerSecond: 1e12 } }
    const more = synthBodies(2, 6)
    // a body imported before is a duplicate (a retried import signs nothing twice)
    const jsonl = ['', JSON.stringify(more[0]), '[oops', JSON.stringify(bad), JSON.stringify({ ...more[1], author: 'someone', seq: 99, v: 1 }), JSON.stringify(bodies[1])].join('\n')
    const r2 = await post('/import', jsonl)
    expect(r2.body.imported).toBe(2)
    expect(r2.body.duplicates).toBe(1)
    expect(r2.body.errors.map((e: any) => [e.line, e.code])).toEqual([[3, 'E_MALFORMED'], [4, 'E_IMPLAUSIBLE']])

    const me = daemon.components.peerId.toString()
    const page = await get(`/records?author=${me}&limit=10`)
    expect(page.body.records.map((r: any) => r.seq)).toEqual([1, 2, 3, 4, 5])
    for (const r of page.body.records) {
      expect(r.author).toBe(me)
      expect(r.source).toBe('import')
      expect(r.body.author).toBe(me)
      expect(r.body.seq).toBe(r.seq)
    }
    expect(events.filter(e => e.via === 'own')).toHaveLength(5)
    const counts = await daemon.components.store.counts()
    expect(counts).toMatchObject({ records: 5, own: 5 })
  })

  it('ownRecord refuses an invalid body without using a seq', async () => {
    const c = daemon.components
    const before = await c.store.nextSeq(c.peerId.toString())
    const [body] = synthBodies(1, 8)
    await expect(c.ownRecord({ ...body, result: { ...body.result, wallMs: Number.NaN } })).rejects.toMatchObject({ code: 'E_BAD_METRIC' })
    expect(await c.store.nextSeq(c.peerId.toString())).toBe(before)
    const rec = await c.ownRecord({ ...body, source: 'benchmark' })
    expect(rec.body.seq).toBe(before)
    expect(rec.body.source).toBe('benchmark')
    expect(await c.store.has(rec.id)).toBe(true)
  })

  it('serves status with contributions, and pages records with a cursor', async () => {
    const s = await get('/status')
    expect(s.status).toBe(200)
    expect(s.body).toMatchObject({ peerId: daemon.components.peerId.toString(), peers: 0, records: 6, own: 6, authors: 1, equivocations: 0, rejected: {}, snapshot: { trees: 7 } })
    expect(s.body.addresses[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
    expect(typeof s.body.uptime).toBe('number')
    // issue #7: the daemon's own event-loop delay and CPU share, over the last 10 s or any window
    expect(s.body.eventLoop).toMatchObject({ samples: expect.any(Number), p99Ms: expect.any(Number), maxMs: expect.any(Number), cpuPct: expect.any(Number) })
    const loop = await get(`/eventloop?since=${Date.now() - 60_000}`)
    expect(loop.body.samples).toBeGreaterThan(0)
    expect(loop.body.maxMs).toBeGreaterThanOrEqual(loop.body.p50Ms)
    expect((await get('/eventloop?since=soon')).status).toBe(400)

    const seen: number[] = []
    let cursor: string | undefined
    do {
      const p = await get(`/records?limit=4&order=desc${cursor != null ? `&cursor=${cursor}` : ''}`)
      seen.push(...p.body.records.map((r: any) => r.seq))
      cursor = p.body.cursor
    } while (cursor != null)
    expect(seen).toEqual([6, 5, 4, 3, 2, 1])
    expect((await get('/records?source=nope')).body.error.code).toBe('E_BAD_PARAM')
    expect((await get('/records?limit=-3')).status).toBe(400)
  })

  it('exports Prometheus metrics', async () => {
    const m = await get('/metrics')
    expect(m.type).toMatch(/^text\/plain/)
    const families = parsePrometheus(m.body)
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      families.get(name)?.samples.find(s => JSON.stringify(s.labels) === JSON.stringify(labels))?.value
    expect(value('swarmtune_records')).toBe(6)
    expect(value('swarmtune_own_records')).toBe(6)
    expect(value('swarmtune_peers')).toBe(0)
    expect(value('swarmtune_probe')).toBe(1)
    expect(families.get('swarmtune_rejected_total')?.type).toBe('counter')
    expect(value('swarmtune_event_loop_delay_seconds', { stat: 'p99' })).toBeGreaterThanOrEqual(0)
    expect(value('swarmtune_store_bytes')).toBeGreaterThan(0)
    // the requests made so far are counted by route and status; an unknown path is one series
    expect(value('swarmtune_api_requests_total', { method: 'GET', route: '/records', status: '200' })).toBeGreaterThan(0)
    await get('/no/such/path/' + Math.random())
    const again = parsePrometheus((await get('/metrics')).body)
    expect(again.get('swarmtune_api_requests_total')?.samples.filter(s => s.labels.route === 'unmatched')).toHaveLength(1)
    // every swarmtune family named as a counter is typed as one, and the other way round
    for (const f of families.values()) {
      if (!f.name.startsWith('swarmtune_')) continue
      expect(f.name.endsWith('_total'), f.name).toBe(f.type === 'counter')
    }
  })

  it('answers bad input with a status and a code, and never crashes', async () => {
    expect(await post('/echo', '{"a":1}')).toEqual({ status: 200, body: { a: 1 } })
    const badJson = await post('/echo', '{nope')
    expect(badJson.status).toBe(400)
    expect(badJson.body.error.code).toBe('E_BAD_JSON')
    expect(await get('/nowhere')).toMatchObject({ status: 404, body: { error: { code: 'E_NOT_FOUND' } } })
    expect((await post('/status', '')).status).toBe(405)
    const boom = await get('/boom')
    expect(boom.status).toBe(500)
    expect(JSON.stringify(boom.body)).not.toContain('secret')
    expect(await get('/teapot')).toMatchObject({ status: 418, body: { error: { code: 'E_TEAPOT' } } })
    expect((await get('/status')).status).toBe(200)
  })

  it('answers 503 E_STARTING with Retry-After for a path with no route until the services are ready, then 404', async () => {
    // /v1/* used to answer 404 for ~1.3 s after /status was up (issue #18): a client must be told to retry
    const api: ControlApi = createApi({ host: '127.0.0.1', port: 0 })
    api.route('GET', '/early', async () => ({ json: { ok: true } }))
    await api.start()
    try {
      const early = await fetch(`${api.url()}/early`)
      expect(await early.json()).toEqual({ ok: true })
      const starting = await fetch(`${api.url()}/v1/models`)
      expect(starting.status).toBe(503)
      expect(starting.headers.get('retry-after')).toBe('1')
      expect((await starting.json()).error.code).toBe('E_STARTING')
      api.ready?.()
      const missing = await fetch(`${api.url()}/v1/models`)
      expect(missing.status).toBe(404)
      expect((await missing.json()).error.code).toBe('E_NOT_FOUND')
    } finally {
      await api.stop()
    }
  })

  it('refuses request bodies over the limit (413) and keeps serving', async () => {
    const api: ControlApi = createApi({ host: '127.0.0.1', port: 0, maxBodyBytes: 1024 })
    api.route('POST', '/sink', async req => ({ json: { size: (await req.body()).length } }))
    await api.start()
    try {
      const ok = await fetch(`${api.url()}/sink`, { method: 'POST', body: 'x'.repeat(1000), headers: JSON_TYPE })
      expect(await ok.json()).toEqual({ size: 1000 })
      const big = await fetch(`${api.url()}/sink`, { method: 'POST', body: 'x'.repeat(5000), headers: JSON_TYPE })
      expect(big.status).toBe(413)
      expect((await big.json()).error.code).toBe('E_BODY_TOO_LARGE')
      // chunked upload without a content-length: caught while streaming
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${api.url()}/sink`, { method: 'POST', headers: JSON_TYPE }, res => { resolve(res.statusCode ?? 0); res.resume() })
        req.on('error', reject)
        for (let i = 0; i < 10; i++) req.write('y'.repeat(512))
        req.end()
      }).catch(() => 413)
      expect(status).toBe(413)
      expect((await fetch(`${api.url()}/sink`, { method: 'POST', body: 'z', headers: JSON_TYPE }).then(async r => await r.json()))).toEqual({ size: 1 })
    } finally {
      await api.stop()
    }
  })

  it('starts each extra service once', async () => {
    expect(lifecycle).toEqual(['start'])
  })
})
