import { createRng, pick, randInt } from '../util/random.js'
import { stableId } from './stable-id.js'
import type { ResultMetrics, UnsignedBody } from './types.js'

/**
 * Schema-valid synthetic record bodies (`source: synthetic`) for load tests and fixtures. The
 * numbers follow a plausible shape (a few machines, models, workloads and methods) but are not
 * measurements: they must never be mixed into a real history.
 */
const MACHINES = [
  { cpuModel: 'Synthetic 2-core CPU', cores: 2, ramMiB: 24576, gpus: [], backend: 'cpu' as const },
  { cpuModel: 'Synthetic 16-core CPU', cores: 16, ramMiB: 65536, gpus: [], backend: 'cpu' as const },
  { cpuModel: 'Synthetic 8-core CPU', cores: 8, ramMiB: 32768, gpus: [{ name: 'Synthetic GPU 24G', vramMiB: 24576 }], backend: 'cuda' as const }
]
const MODELS = [
  { name: 'synthetic-tiny', params: 5e6, layers: 4, embd: 256, heads: 4, kvHeads: 4, ff: 768, vocab: 1024, ctx: 2048, weightBits: 32, fileType: 'F32' },
  { name: 'synthetic-small', params: 6.3e7, layers: 8, embd: 768, heads: 12, kvHeads: 4, ff: 2048, vocab: 4096, ctx: 4096, weightBits: 16, fileType: 'F16' }
]
const WORKLOADS = ['chat', 'docqa', 'summarize', 'codeedit', 'classify']
const METHODS = [
  { id: 'baseline', knobs: { prefixCache: 0, batchSize: 512, parallel: 1, flashAttention: 0 } },
  { id: 'prefix-cache', knobs: { prefixCache: 1, batchSize: 512, parallel: 1, flashAttention: 0 } },
  { id: 'batch-4', knobs: { prefixCache: 0, batchSize: 512, parallel: 4, flashAttention: 0 } },
  { id: 'flash-attn', knobs: { prefixCache: 0, batchSize: 512, parallel: 1, flashAttention: 1 } }
]

export function synthBodies (count: number, seed = 1, now = Date.now()): UnsignedBody[] {
  const rng = createRng(seed)
  const out: UnsignedBody[] = []
  for (let i = 0; i < count; i++) {
    const m = pick(rng, MACHINES)
    const threads = Math.max(1, Math.min(m.cores, randInt(rng, 1, 4)))
    const hwBase = { cpuModel: m.cpuModel, cores: m.cores, ramMiB: m.ramMiB, gpus: m.gpus, backend: m.backend, os: 'linux-x64' }
    const model = pick(rng, MODELS)
    const family = pick(rng, WORKLOADS)
    const method = pick(rng, METHODS)
    const promptTokens = randInt(rng, 16, 2048)
    const outputTokens = randInt(rng, 1, 256)
    const wallMs = 50 + rng() * 5000
    const ttft = wallMs * (0.1 + 0.5 * rng())
    out.push({
      timestamp: now - randInt(rng, 0, 86_400_000),
      source: 'synthetic',
      hardware: { id: stableId(hwBase), ...hwBase, threads, pricePerHour: m.backend === 'cuda' ? 0.8 : 0.05 },
      engine: { name: 'llama.cpp', version: 'synthetic' },
      model: { id: stableId(model), architecture: 'llama', ...model },
      workload: {
        family,
        name: `${family}-synth`,
        features: { requests: randInt(rng, 1, 16), promptTokensMean: promptTokens, outputTokensMean: outputTokens, sharedPrefixRatio: rng(), concurrency: randInt(rng, 1, 4) }
      },
      method,
      result: syntheticResult({ wallMs, promptTokens, outputTokens, ttftMs: ttft, ttftP95Factor: 1.3, peakRssMiB: 200 + rng() * 800, spread: rng() * 0.2 })
    })
  }
  return out
}

/** A synthetic result (successful unless `ok: false`) whose rates and TPOT are derived from wall time, tokens and TTFT. */
export function syntheticResult (m: { wallMs: number, promptTokens: number, outputTokens: number, ttftMs: number, ttftP95Factor: number, peakRssMiB: number, spread: number, ok?: boolean, error?: string }): ResultMetrics {
  return {
    ok: m.ok ?? true,
    ...(m.error != null ? { error: m.error } : {}),
    repeats: 3,
    wallMs: m.wallMs,
    promptTokens: m.promptTokens,
    outputTokens: m.outputTokens,
    outputTokensPerSecond: m.outputTokens / (m.wallMs / 1000),
    totalTokensPerSecond: (m.promptTokens + m.outputTokens) / (m.wallMs / 1000),
    ttftMsP50: m.ttftMs,
    ttftMsP95: m.ttftMs * m.ttftP95Factor,
    tpotMs: (m.wallMs - m.ttftMs) / Math.max(1, m.outputTokens),
    peakRssMiB: m.peakRssMiB,
    spread: m.spread
  }
}
