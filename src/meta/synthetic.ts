import type { Backend, HardwareFingerprint, ModelDescriptor, UnsignedBody } from '../records/types.js'
import { syntheticResult } from '../records/synthetic.js'
import { createRng } from '../util/random.js'
import { stableId } from '../records/stable-id.js'

/**
 * A synthetic history WITH structure, for tests, `eval` development and benchmarks: each method
 * wins in its own context (prefix-cache on shared prefixes, parallel decoding on concurrent
 * requests with many cores, prompt-lookup speculation on high n-gram overlap, Q8 weights on
 * decode-heavy CPU work, flash attention on long prompts on GPUs), with log-normal measurement
 * noise and a few failures. `source: 'synthetic'`: never mix with real measurements.
 */
export interface SynthHistoryOptions {
  machines?: number
  models?: number
  workloads?: number
  repeats?: number
  /** relative noise of one record (log-normal sigma) */
  noise?: number
  seed?: number
  /** share of records that fail */
  failRate?: number
}

export const SYNTH_METHODS: Record<string, Record<string, number>> = {
  baseline: { prefixCache: 0, batchSize: 512, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: 0, kvCacheBits: 16, weightBits: 16, threads: 0 },
  'prefix-cache': { prefixCache: 1, batchSize: 512, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: 0, kvCacheBits: 16, weightBits: 16, threads: 0 },
  'parallel-4': { prefixCache: 0, batchSize: 512, parallel: 4, speculative: 0, draftTokens: 0, flashAttention: 0, kvCacheBits: 16, weightBits: 16, threads: 0 },
  'flash-attn': { prefixCache: 0, batchSize: 512, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: 1, kvCacheBits: 16, weightBits: 16, threads: 0 },
  'spec-lookup': { prefixCache: 0, batchSize: 512, parallel: 1, speculative: 1, draftTokens: 8, flashAttention: 0, kvCacheBits: 16, weightBits: 16, threads: 0 },
  'q8-weights': { prefixCache: 0, batchSize: 512, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: 0, kvCacheBits: 16, weightBits: 8, threads: 0 }
}

function gauss (rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng())
}

export function synthMachines (n: number, seed = 1): HardwareFingerprint[] {
  const rng = createRng(seed * 31 + 7)
  const out: HardwareFingerprint[] = []
  for (let i = 0; i < n; i++) {
    const gpu = i % 3 === 2
    const cores = [2, 4, 8, 16, 32][Math.floor(rng() * 5)]
    const base = {
      cpuModel: `Synthetic CPU ${i}`,
      cores,
      ramMiB: 8192 * (1 + Math.floor(rng() * 8)),
      gpus: gpu ? [{ name: `Synthetic GPU ${i}`, vramMiB: 8192 * (1 + Math.floor(rng() * 6)) }] : [],
      backend: (gpu ? (i % 2 === 0 ? 'cuda' : 'vulkan') : 'cpu') as Backend,
      os: 'linux-x64'
    }
    out.push({ id: stableId(base), ...base, threads: Math.min(cores, 4), pricePerHour: gpu ? 0.5 + rng() : 0.02 * cores })
  }
  return out
}

export function synthModels (n: number, seed = 1): ModelDescriptor[] {
  const rng = createRng(seed * 17 + 3)
  const out: ModelDescriptor[] = []
  for (let i = 0; i < n; i++) {
    const layers = 4 + 4 * Math.floor(rng() * 8)
    const embd = 256 * (1 + Math.floor(rng() * 8))
    const heads = embd / 64
    const kvHeads = rng() < 0.5 ? heads : Math.max(1, heads / 4)
    const ff = embd * 3
    const vocab = 32000
    const params = layers * (4 * embd * embd + 3 * embd * ff) + 2 * vocab * embd
    const weightBits = rng() < 0.5 ? 16 : 8.5
    const base = { name: `synth-${i}`, architecture: 'llama', params, layers, embd, heads, kvHeads, ff, vocab, ctx: 4096, weightBits, fileType: weightBits === 16 ? 'F16' : 'Q8_0' }
    out.push({ id: stableId(base), ...base })
  }
  return out
}

interface SynthWorkload { family: string, name: string, features: Record<string, number> }

export function synthWorkloads (n: number, seed = 1): SynthWorkload[] {
  const rng = createRng(seed * 13 + 5)
  const families = ['chat', 'docqa', 'summarize', 'codeedit', 'classify']
  const out: SynthWorkload[] = []
  for (let i = 0; i < n; i++) {
    const family = families[i % families.length]
    const requests = family === 'classify' ? 16 + Math.floor(rng() * 48) : 1 + Math.floor(rng() * 12)
    const prompt = family === 'docqa' || family === 'summarize' ? 400 + rng() * 1600 : family === 'classify' ? 30 + rng() * 60 : 60 + rng() * 400
    const output = family === 'summarize' || family === 'classify' ? 4 + rng() * 28 : family === 'codeedit' ? prompt * (0.6 + 0.4 * rng()) : 32 + rng() * 200
    const shared = family === 'docqa' ? 0.6 + 0.38 * rng() : family === 'chat' ? 0.2 + 0.5 * rng() : family === 'classify' ? 0.3 + 0.6 * rng() : 0.05 * rng()
    const overlap = family === 'codeedit' ? 0.5 + 0.45 * rng() : family === 'summarize' ? 0.15 + 0.2 * rng() : 0.05 * rng()
    const concurrency = family === 'classify' ? 4 + Math.floor(rng() * 5) : Math.floor(1 + rng() * 3)
    const features = {
      requests,
      promptTokensMean: Math.round(prompt),
      promptTokensP95: Math.round(prompt * 1.2),
      promptTokensMax: Math.round(prompt * 1.3),
      totalPromptTokens: Math.round(prompt * requests),
      outputTokensMean: Math.round(output),
      sharedPrefixRatio: Math.round(shared * 1e4) / 1e4,
      reusablePrefixRatio: Math.round(shared * 0.9 * 1e4) / 1e4,
      ngramOverlap: Math.round(overlap * 1e4) / 1e4,
      concurrency
    }
    out.push({ family, name: `${family}-synth-${i}`, features })
  }
  return out
}

/** The "true" speedup of a method in a context (before noise): the structure the forest must learn. */
export function trueSpeedup (method: string, hw: HardwareFingerprint, model: ModelDescriptor, wl: SynthWorkload): number {
  const f = wl.features
  const prefillShare = f.promptTokensMean / (f.promptTokensMean + 8 * f.outputTokensMean)
  const gpu = hw.backend !== 'cpu'
  switch (method) {
    case 'baseline': return 1
    case 'prefix-cache': return 1 / (1 - 0.95 * prefillShare * f.sharedPrefixRatio) * 0.98
    case 'parallel-4': {
      const conc = Math.min(4, f.concurrency, f.requests)
      const per = gpu ? 0.7 : Math.min(1, hw.cores / 16) * 0.5
      return conc <= 1 ? 0.93 : 1 + per * (conc - 1) * 0.6
    }
    case 'flash-attn': return 1 + (gpu ? 0.45 : 0.12) * prefillShare * Math.min(1, f.promptTokensMean / 800)
    case 'spec-lookup': return (1 - prefillShare) * (0.85 + 1.6 * f.ngramOverlap) + prefillShare
    case 'q8-weights': return model.weightBits <= 8.5 ? 0.99 : (gpu ? 1.08 : 1 + 0.7 * (1 - prefillShare) * Math.min(1, model.params / 2e8))
    default: return 1
  }
}

export function synthHistory (opts: SynthHistoryOptions = {}): UnsignedBody[] {
  const seed = opts.seed ?? 1
  const machines = synthMachines(opts.machines ?? 4, seed)
  const models = synthModels(opts.models ?? 3, seed)
  const workloads = synthWorkloads(opts.workloads ?? 10, seed)
  const repeats = opts.repeats ?? 3
  const noise = opts.noise ?? 0.04
  const failRate = opts.failRate ?? 0.01
  const rng = createRng(seed * 101 + 11)
  const out: UnsignedBody[] = []
  for (const hw of machines) {
    const hwSpeed = (hw.backend === 'cpu' ? 1 : 12) * Math.sqrt(hw.threads)
    for (const model of models) {
      const perToken = model.params / 5e7 / hwSpeed
      for (const wl of workloads) {
        const f = wl.features
        const baseWall = (f.totalPromptTokens * 0.3 + f.requests * f.outputTokensMean * 2.4) * perToken + 5
        const baseTtft = f.promptTokensMean * 0.3 * perToken + 2
        for (const [method, knobs] of Object.entries(SYNTH_METHODS)) {
          const s = trueSpeedup(method, hw, model, wl)
          const ttftFactor = method === 'prefix-cache' ? 1 - 0.9 * f.sharedPrefixRatio : method === 'flash-attn' ? 0.85 : method === 'parallel-4' ? 1.2 : 1
          for (let r = 0; r < repeats; r++) {
            const eps = Math.exp(noise * gauss(rng))
            const wallMs = baseWall / s * eps
            const ttft = baseTtft * ttftFactor * Math.exp(noise * gauss(rng))
            const ok = rng() >= failRate
            const promptTokens = f.totalPromptTokens
            const outputTokens = Math.round(f.requests * f.outputTokensMean)
            out.push({
              source: 'synthetic',
              hardware: hw,
              engine: { name: 'llama.cpp', version: 'synthetic' },
              model,
              workload: wl,
              method: { id: method, knobs },
              result: syntheticResult({ ok, error: ok ? undefined : 'E_SYNTH_FAIL', wallMs, promptTokens, outputTokens, ttftMs: ttft, ttftP95Factor: 1.2, peakRssMiB: 300, spread: noise * 2 })
            })
          }
        }
      }
    }
  }
  return out
}
