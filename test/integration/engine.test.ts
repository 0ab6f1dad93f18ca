import { copyFile, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLlamaEngine } from '../../src/engine/llama-engine.js'
import { BASELINE_KNOBS, getMethod } from '../../src/engine/methods.js'
import { resolveModel } from '../../src/engine/models.js'
import type { Engine, InferenceRequest, Method, ModelSpec } from '../../src/engine/types.js'

// Real engine on the embedded tiny model (CPU, 1 thread). getLlama is slow to initialise, so one
// engine serves the whole file.
let dir: string
let engine: Engine
let tiny: ModelSpec

const SYSTEM = 'You are a helpful assistant. Answer the question about the document in one short sentence. ' +
  'The document is about the river, the mountain and the city near the sea. '
const QUESTIONS = ['What is the river?', 'Where is the city?', 'Tell me about the mountain.']
const requests = (maxTokens = 12): InferenceRequest[] => QUESTIONS.map(q => ({ prompt: SYSTEM + q, maxTokens }))

async function tokensOf (methodId: string | Method, reqs: InferenceRequest[], model = tiny): Promise<number[][]> {
  const method = typeof methodId === 'string' ? getMethod(methodId) : methodId
  const s = await engine.open(model, method)
  try {
    return (await s.runBatch(reqs)).requests.map(r => r.tokens)
  } finally {
    await s.close()
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmtune-engine-'))
  tiny = await resolveModel({ engine: { models: [] } }, 'tiny', dir)
  engine = await createLlamaEngine({ gpu: 'cpu', threads: 1 })
}, 120_000)

afterAll(async () => {
  await engine?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('llama engine on the tiny model', () => {
  it('reports itself and generates greedy tokens deterministically', async () => {
    expect(engine.backend).toBe('cpu')
    expect(engine.gpus).toEqual([])
    expect(engine.info.name).toBe('llama.cpp')
    expect(engine.info.version).toMatch(/^node-llama-cpp@3\.21\.1 /)
    const s = await engine.open(tiny, getMethod('baseline'))
    try {
      expect(s.model).toMatchObject({ name: 'tiny', architecture: 'llama', layers: 4, fileType: 'F32' })
      const ids = s.tokenize('the river and the mountain')
      expect(ids.length).toBeGreaterThan(3)
      expect(ids.length).toBeLessThan(10) // word pieces, not bytes
      const a = await s.runBatch([{ prompt: SYSTEM, maxTokens: 16 }])
      const b = await s.runBatch([{ prompt: SYSTEM, maxTokens: 16 }])
      const r = a.requests[0]
      expect(r.outputTokens).toBeGreaterThan(0)
      expect(r.outputTokens).toBeLessThanOrEqual(16)
      expect(r.tokens).toHaveLength(r.outputTokens)
      expect(r.promptTokens).toBeGreaterThan(20)
      expect(r.ttftMs).toBeLessThanOrEqual(r.latencyMs)
      expect(r.text.length).toBeGreaterThan(0)
      expect(b.requests[0].tokens).toEqual(r.tokens)
      expect(a.wallMs).toBeGreaterThan(0)
    } finally {
      await s.close()
    }
  })

  it('prefix-cache, batch-2, spec-lookup and spec-draft give the baseline greedy tokens', async () => {
    const reqs = requests()
    const base = await tokensOf('baseline', reqs)
    expect(base.every(t => t.length > 0)).toBe(true)
    expect(await tokensOf('prefix-cache', reqs)).toEqual(base)
    expect(await tokensOf('batch-2', reqs)).toEqual(base)
    expect(await tokensOf('spec-lookup', reqs)).toEqual(base)
    expect(await tokensOf('spec-draft', reqs)).toEqual(base)
  })

  it('prefix-cache reuses the shared prompt prefix; baseline re-evaluates everything', async () => {
    for (const [id, reuse] of [['prefix-cache', true], ['baseline', false]] as const) {
      const s = await engine.open(tiny, getMethod(id))
      try {
        const out = (await s.runBatch(requests(4))).requests
        expect(out[0].cachedPromptTokens).toBe(0)
        if (reuse) {
          expect(out[1].cachedPromptTokens).toBeGreaterThan(20)
          expect(out[1].cachedPromptTokens).toBeLessThan(out[1].promptTokens)
          // state carries across batches until reset()
          const again = await s.runBatch(requests(4).slice(0, 1))
          expect(again.requests[0].cachedPromptTokens).toBeGreaterThan(20)
          await s.reset!()
          const cold = await s.runBatch(requests(4).slice(0, 1))
          expect(cold.requests[0].cachedPromptTokens).toBe(0)
          expect(cold.requests[0].tokens).toEqual(again.requests[0].tokens)
        } else {
          expect(out[1].cachedPromptTokens).toBe(0)
        }
      } finally {
        await s.close()
      }
    }
  })

  it('speculative verification accepts and rolls back drafts without changing the output', async () => {
    // On this prompt the tiny model's greedy output falls into a cycle (a property of the fixed
    // embedded weights), so prompt lookup drafts from the output history and verification accepts.
    const reqs = [{ prompt: 'def add(a, b):\n    return a + b\n\ndef add(a, b):\n', maxTokens: 48 }]
    const base = await tokensOf('baseline', reqs)
    for (const id of ['spec-lookup', 'spec-draft']) {
      const s = await engine.open(tiny, getMethod(id))
      try {
        const r = (await s.runBatch(reqs)).requests[0]
        expect(r.tokens).toEqual(base[0])
        expect(r.draftedTokens).toBeGreaterThan(0)
        expect(r.acceptedDraftTokens).toBeGreaterThan(0)
        expect(r.acceptedDraftTokens).toBeLessThanOrEqual(r.draftedTokens!)
        // the draft model is the target's first layer: it agrees often but not always, so the
        // KV rollback of rejected drafts runs too
        if (id === 'spec-draft') expect(r.acceptedDraftTokens).toBeLessThan(r.draftedTokens!)
      } finally {
        await s.close()
      }
    }
  })

  it('supports() gives reasons instead of throwing', () => {
    const noDraft: ModelSpec = { name: 'tiny', path: tiny.path }
    const r1 = engine.supports(noDraft, getMethod('spec-draft'))
    expect(r1.ok).toBe(false)
    expect(r1.ok ? '' : r1.reason).toMatch(/draft/)
    const r2 = engine.supports(noDraft, getMethod('weights-q8'))
    expect(r2.ok ? '' : r2.reason).toMatch(/Q8_0/)
    const kvNoFa: Method = { id: 'kv-q8-nofa', description: '', lossless: false, knobs: { ...BASELINE_KNOBS, kvCacheBits: 8 } }
    const r3 = engine.supports(tiny, kvNoFa)
    expect(r3.ok ? '' : r3.reason).toMatch(/flash attention/)
    const r4 = engine.supports({ name: 'x', path: join(dir, 'missing.gguf') }, getMethod('baseline'))
    expect(r4.ok ? '' : r4.reason).toMatch(/missing\.gguf/)
    expect(engine.supports(tiny, getMethod('spec-draft')).ok).toBe(true)
    expect(engine.supports(tiny, getMethod('weights-q8')).ok).toBe(true)
  })

  it('opening an unsupported method fails with E_METHOD_UNSUPPORTED', async () => {
    await expect(engine.open({ name: 'tiny', path: tiny.path }, getMethod('spec-draft'))).rejects.toMatchObject({ code: 'E_METHOD_UNSUPPORTED' })
  })

  it('a missing, truncated or non-GGUF model fails with a coded error naming the file', async () => {
    const missing = join(dir, 'missing.gguf')
    await expect(engine.describe({ name: 'm', path: missing })).rejects.toMatchObject({ code: 'E_MODEL_NOT_FOUND', message: expect.stringContaining(missing) })
    await expect(engine.open({ name: 'm', path: missing }, getMethod('baseline'))).rejects.toMatchObject({ code: 'E_MODEL_NOT_FOUND', message: expect.stringContaining(missing) })
    const cut = join(dir, 'cut.gguf')
    await copyFile(tiny.path, cut)
    await truncate(cut, 4_000_000)
    await expect(engine.describe({ name: 'c', path: cut })).rejects.toMatchObject({ code: 'E_MODEL_TRUNCATED', message: expect.stringContaining(cut) })
    await expect(engine.open({ name: 'c', path: cut }, getMethod('baseline'))).rejects.toMatchObject({ code: 'E_MODEL_TRUNCATED', message: expect.stringContaining(cut) })
    // a broken draft file is named too
    await expect(engine.open({ ...tiny, draftPath: cut }, getMethod('spec-draft'))).rejects.toMatchObject({ code: 'E_MODEL_TRUNCATED', message: expect.stringContaining(cut) })
    const text = join(dir, 'text.gguf')
    await writeFile(text, '{"not": "a model"}')
    await expect(engine.describe({ name: 't', path: text })).rejects.toMatchObject({ code: 'E_MODEL_NOT_GGUF', message: expect.stringContaining(text) })
  })

  it('honours an AbortSignal', async () => {
    const s = await engine.open(tiny, getMethod('baseline'))
    try {
      const ac = new AbortController()
      ac.abort()
      await expect(s.runBatch(requests(4), { signal: ac.signal })).rejects.toMatchObject({ code: 'E_ABORTED' })
      const ac2 = new AbortController()
      const p = s.runBatch(requests(200), { signal: ac2.signal })
      setTimeout(() => ac2.abort(), 5)
      await expect(p).rejects.toMatchObject({ code: 'E_ABORTED' })
      // the session stays usable after an abort
      expect((await s.runBatch([{ prompt: SYSTEM, maxTokens: 2 }])).requests[0].outputTokens).toBeGreaterThan(0)
    } finally {
      await s.close()
    }
  })
})
