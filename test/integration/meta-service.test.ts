import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createRecord, type SignedRecord } from '../../src/records/index.js'
import { createRecordStore } from '../../src/store/record-store.js'
import type { RecordStore } from '../../src/store/types.js'
import { loadConfig, type SwarmtuneConfig } from '../../src/node/config.js'
import { createMetaService, SNAPSHOT_KEY, type PersistedSnapshot } from '../../src/meta/service.js'
import { synthHistory } from '../../src/meta/synthetic.js'
import { FEATURE_SCHEMA_VERSION } from '../../src/meta/features.js'
import { CURVE_KEY, type LearningCurveState } from '../../src/meta/learning-curve.js'
import { waitFor } from '../../src/util/wait.js'

// Real LevelDB store, real worker thread (dist/src/meta/train-worker.js: `npm test` builds first).
let dir: string
let store: RecordStore
let config: SwarmtuneConfig

async function signedHistory (n: { machines: number, models: number, workloads: number }): Promise<SignedRecord[]> {
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key).toString()
  const bodies = synthHistory({ ...n, repeats: 1, failRate: 0 })
  return await Promise.all(bodies.map(async (b, i) => await createRecord(key, id, i + 1, b)))
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swarmtune-meta-'))
  store = createRecordStore({ path: join(dir, 'store'), maxRecords: 1_000_000 })
  await store.start()
  const base = loadConfig({ env: {} })
  config = { ...base, meta: { ...base.meta, trees: 4, retrainEveryRecords: 5, retrainIntervalMs: 3_600_000, firstTrainRecords: 0 } }
})

afterEach(async () => {
  await store.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('meta service', () => {
  it('starts cold, retrains in a worker after enough new records, persists and reloads the snapshot', async () => {
    const events = new EventTarget()
    const svc = createMetaService({ config }, { store, events })
    await svc.start()
    expect(svc.current()).toBeNull()
    const cold = svc.select({ ...synthHistory({ machines: 1, models: 1, workloads: 1, repeats: 1 })[0], methods: ['baseline', 'prefix-cache'] })
    expect(cold.coldStart).toBe(true)

    const records = await signedHistory({ machines: 2, models: 1, workloads: 3 })
    for (const r of records) await store.put(r)
    const model = await svc.retrain()
    expect(model).not.toBeNull()
    expect(model!.rows).toBe(records.length)
    expect(svc.status().snapshot).toMatchObject({ rows: records.length, hash: model!.trainingSetHash })

    const saved = await store.getMeta<PersistedSnapshot>(SNAPSHOT_KEY)
    expect(saved).toMatchObject({ version: model!.schemaVersion, trainingSetHash: model!.trainingSetHash, rows: records.length })

    const task = records[0].body
    const warm = svc.select(task)
    expect(warm.coldStart).toBe(false)
    await svc.stop()

    // a fresh service on the same store loads the snapshot at start: same answer, no retraining
    const again = createMetaService({ config }, { store, events: new EventTarget() })
    await again.start()
    expect(again.current()?.trainingSetHash).toBe(model!.trainingSetHash)
    expect(again.select(task)).toEqual(warm)
    await again.stop()
  }, 120_000)

  it('retrains when retrainEveryRecords record events arrive', async () => {
    const events = new EventTarget()
    const svc = createMetaService({ config }, { store, events })
    await svc.start()
    const records = await signedHistory({ machines: 1, models: 1, workloads: 2 })
    for (const r of records) {
      await store.put(r)
      events.dispatchEvent(new CustomEvent('record', { detail: { record: r, via: 'gossip' } }))
    }
    // the retrain runs in the background: wait for it without timing thresholds
    for (let i = 0; i < 600 && svc.current()?.rows !== records.length; i++) await new Promise(resolve => setTimeout(resolve, 100))
    expect(svc.current()?.rows).toBe(records.length)
    await svc.stop()
  }, 120_000)

  it('retrains on start, without crashing, when the stored snapshot is of an older learner, feature schema or history reading', async () => {
    const records = await signedHistory({ machines: 1, models: 1, workloads: 2 })
    for (const r of records) await store.put(r)
    // a snapshot as the release before the pairwise-prior learner wrote it: no learner named
    const { toJSON, train } = await import('../../src/meta/selector.js')
    const { learner: _l, prior: _p, ...oldModel } = toJSON(await train(records, { nTrees: 2, backend: 'histogram' })) as unknown as Record<string, unknown>
    // and one of the current learner trained before older records were normalized (legacy-records.ts): no `reading`
    const current = toJSON(await train(records, { nTrees: 2, backend: 'histogram' })) as unknown as Record<string, unknown>
    for (const [version, model, code] of [[FEATURE_SCHEMA_VERSION, oldModel, 'E_SNAPSHOT_LEARNER'], [FEATURE_SCHEMA_VERSION - 1, { ...oldModel, schemaVersion: FEATURE_SCHEMA_VERSION - 1 }, 'E_SNAPSHOT_SCHEMA'], [FEATURE_SCHEMA_VERSION, current, 'E_SNAPSHOT_READING']] as const) {
      await store.putMeta(SNAPSHOT_KEY, { version, trainingSetHash: 'old', trainedAt: 1, rows: records.length, backend: 'histogram', model })
      const svc = createMetaService({ config }, { store, events: new EventTarget() })
      await svc.start()
      expect(svc.status().lastError?.code).toBe(code)
      // start() retrains in the background: wait for the new snapshot without timing thresholds
      for (let i = 0; i < 600 && svc.current() == null; i++) await new Promise(resolve => setTimeout(resolve, 100))
      expect(svc.current()?.learner).toBe('pairwise-prior')
      expect(svc.current()?.rows).toBe(records.length)
      expect(svc.select(records[0].body).coldStart).toBe(false)
      const saved = await store.getMeta<PersistedSnapshot>(SNAPSHOT_KEY)
      expect((saved?.model as { learner?: string }).learner).toBe('pairwise-prior')
      await svc.stop()
    }
  }, 120_000)

  it('ignores a corrupt stored snapshot and retrains instead of crashing', async () => {
    await store.putMeta(SNAPSHOT_KEY, { version: FEATURE_SCHEMA_VERSION, model: { format: 'swarmtune-meta', garbage: true } })
    const records = await signedHistory({ machines: 1, models: 1, workloads: 2 })
    for (const r of records) await store.put(r)
    const svc = createMetaService({ config }, { store, events: new EventTarget() })
    await svc.start()
    expect(svc.status().lastError?.code).toBe('E_SNAPSHOT_CORRUPT')
    await svc.retrain()
    expect(svc.current()?.rows).toBe(records.length)
    expect(svc.status().lastError).toBeUndefined()
    await svc.stop()
  }, 120_000)

  it('evaluates its selectors after a training (worker thread), appends a curve point and keeps it over a restart', async () => {
    const events = new EventTarget()
    const cfg = { ...config, meta: { ...config.meta, evalIntervalMs: 60_000 } }
    const svc = createMetaService({ config: cfg }, { store, events })
    await svc.start()
    expect(svc.evalState()).toEqual({ latest: null, curve: [] })
    const records = await signedHistory({ machines: 2, models: 1, workloads: 3 })
    for (const r of records) await store.put(r)
    await svc.retrain()
    await waitFor('a learning-curve point', () => svc.evalState().curve.length === 1, 60_000)
    const { latest, curve } = svc.evalState()
    expect(latest?.split).toBe('hardware')
    expect(latest?.rows.filter(r => r.default === true)).toHaveLength(1)
    expect(curve[0]).toMatchObject({ records: records.length, authors: 1, tasks: latest?.tasks, split: 'hardware' })
    const def = curve[0].rows.find(r => r.default === true)
    expect(def?.regret).toBeGreaterThanOrEqual(0)
    expect(curve[0].rows.map(r => r.selector)).toEqual(expect.arrayContaining(['single-best', 'per-workload-best']))
    // a second training within the interval evaluates nothing now
    await svc.retrain()
    expect(svc.evalState().curve).toHaveLength(1)
    await svc.stop()
    expect((await store.getMeta<LearningCurveState>(CURVE_KEY))?.curve).toHaveLength(1)
    const again = createMetaService({ config: cfg }, { store, events: new EventTarget() })
    await again.start()
    expect(again.evalState().curve).toEqual(curve)
    await again.stop()
  }, 120_000)
})
