import { describe, it, expect } from 'vitest'
import type { Engine, EngineSession, InferenceRequest, Method, MethodKnobs, ModelSpec } from '../../../src/engine/types.js'
import { runBenchmark, aggregate, sameOutputs, failedResult, type BenchProgressEvent } from '../../../src/bench/runner.js'
import { generateWorkload } from '../../../src/bench/workloads.js'
import { hardwareFingerprint } from '../../../src/engine/hardware.js'
import { RECORD_VERSION, validateBody, type ModelDescriptor } from '../../../src/records/index.js'

/*
 * The runner's bookkeeping against a scripted engine (deterministic, no model): which cells are
 * skipped, timed out, diverged, and what the bodies hold. The real engine is exercised in
 * test/integration/bench.test.ts.
 */
const KNOBS: MethodKnobs = { prefixCache: 0, batchSize: 512, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: 0, kvCacheBits: 16, weightBits: 16, threads: 0 }
const method = (id: string, over: Partial<MethodKnobs> = {}, lossless = true): Method => ({ id, description: id, lossless, knobs: { ...KNOBS, ...over } })

const MODEL: ModelDescriptor = { id: '0123456789abcdef', name: 'fake', architecture: 'llama', params: 1000, layers: 1, embd: 8, heads: 1, kvHeads: 1, ff: 16, vocab: 100, ctx: 512, weightBits: 16, fileType: 'F16' }
const PROBE = { cpuModel: 'Test CPU', cores: 2, ramMiB: 1024, os: 'linux-x64' }
const AUTHOR = '12D3KooW' + 'A'.repeat(44)

function tokenize (text: string): number[] {
  return text.split(/\s+/).filter(Boolean).map(w => [...w].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 997, 7))
}

function fakeEngine (opts: { slow?: string, corrupt?: string, failOpen?: string, unsupported?: Record<string, string> } = {}): Engine & { opened: string[], closed: number, resets: number } {
  const opened: string[] = []
  const engine = {
    resets: 0,
    info: { name: 'fake', version: '1' },
    backend: 'cpu' as const,
    gpus: [],
    opened,
    closed: 0,
    supports (_m: ModelSpec, me: Method) {
      const reason = opts.unsupported?.[me.id]
      return reason != null ? { ok: false as const, reason } : { ok: true as const }
    },
    async describe (m: ModelSpec) {
      if (m.path === 'missing.gguf') throw Object.assign(new Error('cannot open model file missing.gguf'), { code: 'E_MODEL_NOT_FOUND' })
      return MODEL
    },
    async open (_m: ModelSpec, me: Method): Promise<EngineSession> {
      if (opts.failOpen === me.id) throw Object.assign(new Error('context creation failed'), { code: 'E_ENGINE_OPEN' })
      opened.push(me.id)
      return {
        model: MODEL,
        method: me,
        tokenize,
        async runBatch (reqs: InferenceRequest[], o?: { signal?: AbortSignal }) {
          if (opts.slow === me.id) {
            await new Promise((_resolve, reject) => { o?.signal?.addEventListener('abort', () => reject(o.signal?.reason)) })
          }
          const requests = reqs.map((r, i) => {
            const p = tokenize(r.prompt)
            const tokens = p.slice(-r.maxTokens).map(t => opts.corrupt === me.id && i === 0 ? t + 1 : t)
            return { text: '', tokens, promptTokens: p.length, outputTokens: tokens.length, ttftMs: 2 + i, latencyMs: 2 + i + tokens.length }
          })
          return { requests, wallMs: 1 }
        },
        async reset () { engine.resets++ },
        async close () { engine.closed++ }
      }
    },
    async close () {}
  }
  return engine
}

const spec: ModelSpec = { name: 'fake', path: 'fake.gguf' }
const workloads = [generateWorkload('chat', {}, 'tiny'), generateWorkload('codeedit', {}, 'tiny')]

describe('runBenchmark', () => {
  it('measures every cell, baseline first, with valid bodies and shared workload features', async () => {
    const events: BenchProgressEvent[] = []
    const engine = fakeEngine()
    const res = await runBenchmark({
      engine, model: spec, methods: [method('prefix-cache', { prefixCache: 1 }), method('baseline')], workloads, repeats: 3, probe: PROBE,
      defaultThreads: 1, onProgress: e => events.push(e)
    })
    // workload by workload, the baseline first in each
    expect(res.map(r => `${r.method}/${r.family}`)).toEqual(['baseline/chat', 'prefix-cache/chat', 'baseline/codeedit', 'prefix-cache/codeedit'])
    expect(engine.opened).toHaveLength(4) // a fresh session per cell
    expect(engine.closed).toBe(4)
    expect(engine.resets).toBe(4 * 4) // every run, warm-up included, starts cold
    for (const r of res) {
      const b = r.body
      expect(b.source).toBe('benchmark')
      expect(b.result.ok).toBe(true)
      expect(b.result.repeats).toBe(3)
      expect(b.result.outputTokens).toBeGreaterThan(0)
      expect(b.result.ttftMsP50).toBeGreaterThan(0)
      expect(b.hardware).toEqual(hardwareFingerprint({ backend: 'cpu', gpus: [], threads: 1 }, PROBE))
      expect(() => validateBody({ ...b, v: RECORD_VERSION, author: AUTHOR, seq: 1, timestamp: Date.now() })).not.toThrow()
    }
    expect(res[0].body.result.diverged).toBeUndefined() // the baseline is the reference
    expect(res[1].body.result.diverged).toBe(false)
    expect(res[1].body.workload.features).toEqual(res[0].body.workload.features)
    // the fake echoes the prompt's tail, so codeedit output overlaps its prompt fully
    expect(res[2].body.workload.features.ngramOverlap).toBe(1)
    expect(res[0].body.method).toEqual({ id: 'baseline', knobs: { ...KNOBS } })
    const last = events[events.length - 1]
    expect(last.done).toBe(last.total)
    expect(last.total).toBe(2 * 2 * 4)
    expect(events.filter(e => e.phase === 'warmup')).toHaveLength(4)
  })

  it('records an unsupported method as a failed cell with its reason', async () => {
    const res = await runBenchmark({
      engine: fakeEngine({ unsupported: { 'spec-draft': 'no draft model for fake' } }), model: spec, probe: PROBE,
      methods: [method('baseline'), method('spec-draft', { speculative: 2 })], workloads: workloads.slice(0, 1)
    })
    const skipped = res.find(r => r.method === 'spec-draft')!
    expect(skipped.skipped).toBe('no draft model for fake')
    expect(skipped.body.result.ok).toBe(false)
    expect(skipped.body.result.error).toBe('E_UNSUPPORTED: no draft model for fake')
    expect(skipped.body.workload.features).toEqual(res[0].body.workload.features)
    expect(() => validateBody({ ...skipped.body, v: RECORD_VERSION, author: AUTHOR, seq: 1, timestamp: Date.now() })).not.toThrow()
  })

  it('turns a run past the timeout into a failed record and goes on', async () => {
    const res = await runBenchmark({
      engine: fakeEngine({ slow: 'batch-2' }), model: spec, probe: PROBE, timeoutMs: 50,
      methods: [method('baseline'), method('batch-2', { parallel: 2 }), method('flash', { flashAttention: 1 })], workloads: workloads.slice(0, 1)
    })
    expect(res.map(r => [r.method, r.body.result.ok])).toEqual([['baseline', true], ['batch-2', false], ['flash', true]])
    expect(res[1].body.result.error).toMatch(/^E_TIMEOUT: /)
  })

  it('records open failures with the engine error code', async () => {
    const res = await runBenchmark({ engine: fakeEngine({ failOpen: 'kv-q4' }), model: spec, probe: PROBE, methods: [method('baseline'), method('kv-q4', { kvCacheBits: 4 })], workloads: workloads.slice(0, 1) })
    expect(res[1].body.result).toMatchObject({ ok: false, error: 'E_ENGINE_OPEN: context creation failed' })
  })

  it('flags a lossless method whose greedy tokens differ from the baseline, not a lossy one', async () => {
    const a = await runBenchmark({ engine: fakeEngine({ corrupt: 'spec-lookup' }), model: spec, probe: PROBE, methods: [method('baseline'), method('spec-lookup', { speculative: 1 })], workloads: workloads.slice(0, 1) })
    expect(a[1].body.result.diverged).toBe(true)
    const b = await runBenchmark({ engine: fakeEngine({ corrupt: 'kv-q8' }), model: spec, probe: PROBE, methods: [method('baseline'), method('kv-q8', { kvCacheBits: 8 }, false)], workloads: workloads.slice(0, 1) })
    expect(b[1].body.result.diverged).toBeUndefined()
  })

  it('runs an unrecorded reference pass when the baseline is not selected', async () => {
    const engine = fakeEngine({ corrupt: 'prefix-cache' })
    const res = await runBenchmark({ engine, model: spec, probe: PROBE, methods: [method('prefix-cache', { prefixCache: 1 })], baseline: method('baseline'), workloads })
    expect(res.map(r => r.method)).toEqual(['prefix-cache', 'prefix-cache'])
    expect(engine.opened).toEqual(['baseline', 'prefix-cache', 'baseline', 'prefix-cache'])
    expect(res[0].body.result.diverged).toBe(true)
    expect(res[1].body.workload.features.ngramOverlap).toBe(1)
  })

  it('fails clearly on a bad model before measuring anything', async () => {
    const engine = fakeEngine()
    await expect(runBenchmark({ engine, model: { name: 'x', path: 'missing.gguf' }, methods: [method('baseline')], workloads })).rejects.toMatchObject({ code: 'E_MODEL_NOT_FOUND' })
    expect(engine.opened).toEqual([])
  })

  it('a cancelled run stops and records nothing more', async () => {
    const ac = new AbortController()
    const res = await runBenchmark({
      engine: fakeEngine(), model: spec, probe: PROBE, methods: [method('baseline'), method('flash', { flashAttention: 1 })], workloads: workloads.slice(0, 1),
      signal: ac.signal, onResult: () => { ac.abort() }
    })
    expect(res.map(r => [r.method, r.body.result.ok])).toEqual([['baseline', true]])
    const slow = fakeEngine({ slow: 'baseline' })
    const ac2 = new AbortController()
    setTimeout(() => { ac2.abort() }, 30)
    const res2 = await runBenchmark({ engine: slow, model: spec, probe: PROBE, methods: [method('baseline')], workloads, signal: ac2.signal, timeoutMs: 10_000 })
    expect(res2).toEqual([]) // the cell in progress is dropped, not recorded as a failure
    expect(slow.closed).toBe(1)
  })
})

describe('runner helpers', () => {
  it('aggregate takes medians over runs and the wall-time spread', () => {
    const run = (wallMs: number, ttfts: number[]) => ({ wallMs, promptTokens: 100, outputTokens: 20, ttfts, tpots: [wallMs / 100], outputs: [], cpuMs: wallMs })
    const m = aggregate([run(1000, [10, 20, 30]), run(800, [5, 5, 50]), run(1200, [40, 40, 40])], 123)
    expect(m.wallMs).toBe(1000)
    expect(m.outputTokensPerSecond).toBe(20)
    expect(m.totalTokensPerSecond).toBe(120)
    expect(m.ttftMsP50).toBe(20) // median of per-run p50s 20, 5, 40
    expect(m.spread).toBeCloseTo(0.4)
    expect(m.tpotMs).toBe(10)
    expect(m.peakRssMiB).toBe(123)
  })
  it('sameOutputs compares token by token', () => {
    expect(sameOutputs([[1, 2], [3]], [[1, 2], [3]])).toBe(true)
    expect(sameOutputs([[1, 2], [3]], [[1, 2], [4]])).toBe(false)
    expect(sameOutputs([[1, 2]], [[1, 2, 3]])).toBe(false)
    expect(sameOutputs([[1]], [[1], [2]])).toBe(false)
  })
  it('failed results are zero-valued with the error', () => {
    expect(failedResult('E_X: y')).toMatchObject({ ok: false, error: 'E_X: y', repeats: 0, wallMs: 0 })
  })
})
