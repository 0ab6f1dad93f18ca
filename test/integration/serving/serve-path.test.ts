import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../src/node/config.js'
import { createDaemon, type Daemon } from '../../../src/node/daemon.js'
import { resolveModel } from '../../../src/engine/models.js'
import { getMethod } from '../../../src/engine/methods.js'
import type { Engine, InferenceRequest } from '../../../src/engine/types.js'
import type { ServingService } from '../../../src/serving/service.js'

/**
 * The token-generation path of serving (issue #19 item 4), on a real daemon with the real engine
 * and the embedded tiny model: the engine runs the tokens serving already made for the features
 * (no second tokenizing) and answers exactly as a direct engine call on the same prompts; the
 * served batch's record, written off that path, still reaches the store.
 */

let dir: string
let daemon: Daemon
let serving: ServingService
let engine: Engine
const seen: InferenceRequest[][] = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swarmtune-serve-path-'))
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      net: { listen: ['/ip4/127.0.0.1/tcp/0'], localTestbed: true },
      api: { host: '127.0.0.1', port: 0 },
      engine: { defaultModel: 'tiny' },
      meta: { explorationRate: 0 },
      vote: { intervalMs: 3_600_000 },
      bench: { background: { enabled: false } }
    }
  })
  daemon = createDaemon(config)
  await daemon.start()
  serving = daemon.services.serving as ServingService
  engine = await serving.engine()
  // what serving hands the engine: every session it opens reports its batches' requests
  const open = engine.open.bind(engine)
  engine.open = async (model, method) => {
    const s = await open(model, method)
    const run = s.runBatch.bind(s)
    s.runBatch = async (requests, opts) => { seen.push(requests.map(r => ({ ...r }))); return await run(requests, opts) }
    return s
  }
}, 120_000)

afterAll(async () => {
  await daemon?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('serving hands the engine its tokens and keeps its records', () => {
  const prompts = ['You are terse.\nUser: name a colour.\nAssistant:', 'You are terse.\nUser: name a fruit.\nAssistant:']

  it('the engine runs the prompts\' tokens and answers as a direct call does', async () => {
    const res = await serving.serve({ model: 'tiny', prompts, maxTokens: 8, method: 'baseline' })
    expect(res.timings.tokenizeMs).toBeGreaterThanOrEqual(0)
    const requests = seen.at(-1)
    expect(requests).toHaveLength(2)
    const direct = await engine.open(await resolveModel(loadConfig({ env: {}, overrides: { dataDir: dir } }), 'tiny', dir), getMethod('baseline'))
    try {
      for (const [i, r] of (requests ?? []).entries()) {
        expect(r.prompt).toBe(prompts[i])
        expect(r.tokens).toEqual(direct.tokenize(prompts[i]))
      }
      const plain = await direct.runBatch(prompts.map(prompt => ({ prompt, maxTokens: 8 })))
      expect(res.outputs.map(o => o.text)).toEqual(plain.requests.map(o => o.text))
      expect(res.outputs.map(o => o.promptTokens)).toEqual(plain.requests.map(o => o.promptTokens))
    } finally {
      await direct.close()
    }
  }, 120_000)

  it('the served batch\'s record is stored once serving lets it out', async () => {
    const before = serving.stats().recorded as number
    await serving.serve({ model: 'tiny', prompts, maxTokens: 4 })
    // written when no batch runs (recorder.ts): here, right after; stop() would flush it too
    const deadline = Date.now() + 10_000
    while ((serving.stats().recorded as number) <= before && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 25))
    expect(serving.stats().recorded).toBe(before + 1)
    const own = []
    for await (const r of daemon.components.store.all()) if (r.body.source === 'serving') own.push(r)
    expect(own.length).toBe(before + 1)
  }, 60_000)
})
