/**
 * Deterministic synthetic regression data for the forest's tests and benchmark (pure).
 */
import { createRng, pick } from '../../util/random.js'

export interface Dataset { X: number[][], y: number[] }

/** Gaussian noise from the seeded stream (Box-Muller). */
function gauss (rng: () => number): number {
  const u = Math.max(rng(), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng())
}

/**
 * Friedman #1 widened to `nFeatures` columns: y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4
 * + N(0, noise); the other columns are uniform noise the forest must learn to ignore.
 */
export function friedman1 (n: number, nFeatures = 30, seed = 1, noise = 1): Dataset {
  const rng = createRng(seed)
  const X: number[][] = []
  const y: number[] = []
  for (let i = 0; i < n; i++) {
    const x = new Array<number>(nFeatures)
    for (let f = 0; f < nFeatures; f++) x[f] = rng()
    X.push(x)
    y.push(10 * Math.sin(Math.PI * x[0] * x[1]) + 20 * (x[2] - 0.5) ** 2 + 10 * x[3] + 5 * x[4] + noise * gauss(rng))
  }
  return { X, y }
}

/**
 * Shaped like the meta-model's rows: hardware, model and workload columns with few distinct values,
 * method knob columns (flags and small integers), a few continuous workload features, and a target
 * like a log speedup with the interactions the methods really have (prefix caching pays with long
 * shared prompts, batching with many requests, flash attention on GPUs, KV quantization costs on CPU).
 */
export function metaLike (n: number, seed = 1, noise = 0.05): Dataset {
  const rng = createRng(seed)
  const X: number[][] = []
  const y: number[] = []
  for (let i = 0; i < n; i++) {
    const cores = pick(rng, [2, 4, 8, 16, 32])
    const ram = pick(rng, [8, 16, 32, 64, 128])
    const gpu = rng() < 0.4 ? 1 : 0
    const vram = gpu === 1 ? pick(rng, [8, 12, 24, 80]) : 0
    const params = pick(rng, [0.5, 1, 3, 7, 13])
    const layers = Math.round(16 + params * 2)
    const width = Math.round(1024 + params * 300)
    const heads = pick(rng, [8, 16, 32])
    const kvHeads = pick(rng, [1, 4, 8])
    const weightBits = pick(rng, [4, 8, 16])
    const ctx = pick(rng, [2048, 4096, 8192])
    const promptLen = Math.round(Math.exp(3 + rng() * 5))
    const genLen = Math.round(Math.exp(2 + rng() * 4))
    const batch = pick(rng, [1, 2, 4, 8, 16])
    const prefixShare = rng() < 0.3 ? 0 : rng()
    const prefixCache = rng() < 0.5 ? 1 : 0
    const flashAttn = rng() < 0.5 ? 1 : 0
    const parallel = pick(rng, [1, 2, 4])
    const chunk = pick(rng, [0, 256, 512])
    const kvBits = pick(rng, [16, 8])
    const spec = rng() < 0.3 ? 1 : 0
    const draftLen = spec === 1 ? pick(rng, [2, 4, 8]) : 0
    const threads = pick(rng, [1, 2, 4])
    const noiseCols = [rng(), rng(), pick(rng, [0, 1]), rng() * 100]
    const row = [cores, ram, gpu, vram, params, layers, width, heads, kvHeads, weightBits, ctx,
      promptLen, genLen, batch, prefixShare, prefixCache, flashAttn, parallel, chunk, kvBits, spec,
      draftLen, threads, Math.log(promptLen), promptLen / Math.max(1, genLen), batch * promptLen,
      ...noiseCols]
    const promptFrac = promptLen / (promptLen + genLen)
    let s = 0
    s += prefixCache * prefixShare * promptFrac * 1.2 - prefixCache * 0.03
    s += Math.log(Math.min(parallel, batch)) * 0.35 * (gpu === 1 ? 1 : 0.5) - (parallel > batch ? 0.08 : 0)
    s += flashAttn * (gpu === 1 ? 0.15 : 0.05) * promptFrac
    s += kvBits === 8 ? (gpu === 1 ? 0.04 : -0.12) : 0
    s += chunk > 0 ? (promptLen > chunk ? 0.06 : -0.04) : 0
    s += spec * (draftLen === 4 ? 0.02 : -0.05) * (params > 3 ? 1 : -1)
    s += threads > cores / 2 ? -0.2 : Math.log2(threads) * 0.05
    s += weightBits === 4 ? 0.02 * params / 13 : 0
    X.push(row)
    y.push(s + noise * gauss(rng))
  }
  return { X, y }
}

/** Coefficient of determination of predictions against truth. */
export function r2 (truth: number[], pred: number[]): number {
  const n = truth.length
  let mean = 0
  for (const v of truth) mean += v
  mean /= n
  let ssRes = 0; let ssTot = 0
  for (let i = 0; i < n; i++) { ssRes += (truth[i] - pred[i]) ** 2; ssTot += (truth[i] - mean) ** 2 }
  return 1 - ssRes / ssTot
}
