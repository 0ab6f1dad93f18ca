import { BACKENDS, type Backend } from '../records/types.js'
import type { MethodKnobs } from '../engine/types.js'
import { SwarmtuneError } from '../util/errors.js'
import { capabilityOf } from '../engine/device-specs.js'

/**
 * Feature vectors of the meta-model (docs/META.md lists every column). Pure: a task (hardware,
 * model, workload) plus a method's knob vector → numbers. Bump FEATURE_SCHEMA_VERSION whenever a
 * column is added, removed or changes meaning: snapshots trained with another version are refused.
 */
export const FEATURE_SCHEMA_VERSION = 2

export class FeatureError extends SwarmtuneError {}

/** The task half of a record body: what the meta-model conditions on. */
export interface FeatureTask {
  /**
   * `measured`: this node's own capability probe (engine/capability-probe.ts), attached in memory
   * to its own machine's rows only, never part of a record; used where the spec table knows nothing
   */
  hardware: { cpuModel?: string, cores: number, threads: number, ramMiB: number, gpus: Array<{ vramMiB: number, name?: string }>, backend: Backend | string, measured?: { memBwGBs: number, computeTflops: number } }
  model: { params: number, layers: number, embd: number, heads: number, kvHeads: number, weightBits: number, ctx: number }
  workload: { features: Record<string, number> }
}

/**
 * Workload features the runner computes from the actual tokens (issue #3). A missing key gets
 * the default below and its `<key>Missing` flag is set to 1, so the forest can tell "absent"
 * from "equal to the default". Keys outside this list are ignored (forward compatible).
 */
export const WORKLOAD_FEATURES: ReadonlyArray<{ key: string, default: number, doc: string }> = [
  { key: 'requests', default: 1, doc: 'requests in the workload' },
  { key: 'promptTokensMean', default: 128, doc: 'mean prompt length, tokens' },
  { key: 'promptTokensP95', default: 128, doc: '95th percentile prompt length, tokens' },
  { key: 'promptTokensMax', default: 128, doc: 'longest prompt, tokens' },
  { key: 'totalPromptTokens', default: 128, doc: 'prompt tokens of all requests' },
  { key: 'outputTokensMean', default: 64, doc: 'mean output length (max tokens), tokens' },
  { key: 'sharedPrefixRatio', default: 0, doc: 'common prefix of all prompts / mean prompt length, [0,1]' },
  { key: 'reusablePrefixRatio', default: 0, doc: 'prompt tokens reusable from an earlier request\'s prefix / all prompt tokens, [0,1]' },
  { key: 'ngramOverlap', default: 0, doc: 'share of output n-grams also in the prompt, [0,1] (prompt-lookup decoding gains)' },
  { key: 'concurrency', default: 1, doc: 'requests in flight at once' },
  { key: 'contextDepth', default: 0, doc: 'tokens already in the context before the measured ones (llama-bench n_depth)' }
]

/** Knob defaults = the baseline method (engine/types.ts MethodKnobs); a missing knob means "off". */
export const KNOB_DEFAULTS: MethodKnobs = {
  prefixCache: 0,
  batchSize: 512,
  parallel: 1,
  speculative: 0,
  draftTokens: 0,
  flashAttention: 0,
  kvCacheBits: 16,
  weightBits: 16,
  threads: 0
}
/**
 * Knobs of imported settings that the engine's catalog does not vary (llama-bench n_ubatch,
 * type_v, n_gpu_layers); missing → llama.cpp's default. Feature columns only, not MethodKnobs.
 */
export const EXTRA_KNOB_DEFAULTS = { ubatchSize: 512, kvCacheBitsV: 16, gpuLayers: 0, methodCode: 0 }
export const KNOB_KEYS = [...Object.keys(KNOB_DEFAULTS), ...Object.keys(EXTRA_KNOB_DEFAULTS)] as Array<keyof MethodKnobs | keyof typeof EXTRA_KNOB_DEFAULTS>
const ALL_KNOB_DEFAULTS: Record<string, number> = { ...KNOB_DEFAULTS, ...EXTRA_KNOB_DEFAULTS }

/**
 * The backend as a feature: names this release does not know read as `other`; an `other` of a
 * v1 record whose GPU is an AMD Instinct/Radeon was ROCm (v1 had no value for it).
 */
export function featureBackend (hw: { backend: string, gpus: ReadonlyArray<{ name?: string }> }): Backend {
  const b = (BACKENDS as readonly string[]).includes(hw.backend) ? hw.backend as Backend : 'other'
  if (b === 'other' && hw.gpus.some(g => /\b(amd|radeon|instinct)\b|\bmi\d{3}/i.test(g.name ?? ''))) return 'rocm'
  return b
}

const HW_NAMES = [
  'hw.cores', 'hw.threads', 'hw.ramMiB', 'hw.vramMiB', 'hw.gpus', ...BACKENDS.map(b => `hw.backend.${b}`),
  'hw.memBwGBs', 'hw.memBwTotalGBs', 'hw.fp16Tflops', 'hw.specKnown', 'hw.unifiedMemory'
]
const MODEL_NAMES = ['model.params', 'model.logParams', 'model.layers', 'model.embd', 'model.heads', 'model.kvHeads', 'model.weightBits', 'model.ctx']
const WL_NAMES = [...WORKLOAD_FEATURES.map(f => `wl.${f.key}`), ...WORKLOAD_FEATURES.map(f => `wl.${f.key}Missing`)]
const KNOB_NAMES = KNOB_KEYS.map(k => `knob.${k}`)

export const TASK_FEATURE_NAMES: readonly string[] = [...HW_NAMES, ...MODEL_NAMES, ...WL_NAMES]
export const FEATURE_NAMES: readonly string[] = [...TASK_FEATURE_NAMES, ...KNOB_NAMES]

function num (value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new FeatureError('E_BAD_FEATURE', `feature ${name} is not a finite number (${String(value)})`)
  }
  return value
}

/** Task columns only (hardware, model, workload): used by ISAC/kNN and for task distances. */
export function taskFeatures (task: FeatureTask): number[] {
  const hw = task.hardware
  const m = task.model
  if (hw == null || m == null || task.workload == null) throw new FeatureError('E_BAD_FEATURE', 'task needs hardware, model and workload')
  const gpus = Array.isArray(hw.gpus) ? hw.gpus : []
  const reported = gpus.reduce((s, g) => s + num(g.vramMiB, 'hw.gpus[].vramMiB'), 0)
  const backend = featureBackend({ backend: String(hw.backend), gpus })
  // spec-sheet capability by device name (engine/device-specs.ts); 0 and specKnown 0 when unknown
  const cap = capabilityOf({ cpuModel: hw.cpuModel ?? '', backend, gpus: gpus.map(g => ({ name: g.name ?? '' })) }, hw.measured)
  // imported records often carry VRAM 0: the spec table knows it
  const vram = reported > 0 || gpus.length === 0 ? reported : cap.memMiB
  const params = num(m.params, 'model.params')
  const out = [
    num(hw.cores, 'hw.cores'), num(hw.threads, 'hw.threads'), num(hw.ramMiB, 'hw.ramMiB'), vram, gpus.length,
    ...BACKENDS.map(b => (backend === b ? 1 : 0)),
    cap.memBwGBs, cap.memBwTotalGBs, cap.fp16Tflops, cap.known, cap.unified,
    params, Math.log10(Math.max(1, params)), num(m.layers, 'model.layers'), num(m.embd, 'model.embd'),
    num(m.heads, 'model.heads'), num(m.kvHeads, 'model.kvHeads'), num(m.weightBits, 'model.weightBits'), num(m.ctx, 'model.ctx')
  ]
  const wf = task.workload.features ?? {}
  const flags: number[] = []
  for (let i = 0; i < WORKLOAD_FEATURES.length; i++) {
    const f = WORKLOAD_FEATURES[i]
    const v = wf[f.key]
    if (v === undefined || v === null) {
      out.push(f.default)
      flags.push(1)
    } else {
      // the column's name from the list (a template literal here built ~20 strings per task)
      out.push(num(v, WL_NAMES[i]))
      flags.push(0)
    }
  }
  out.push(...flags)
  return out
}

/** Knob columns; missing knobs take the baseline default, non-finite ones are refused. */
export function knobFeatures (knobs: Partial<Record<string, number>>): number[] {
  return KNOB_KEYS.map(k => {
    // the engine sets one KV type for K and V: without its own value V follows K
    const v = k === 'kvCacheBitsV' && (knobs[k] === undefined || knobs[k] === null) ? knobs.kvCacheBits : knobs[k]
    return v === undefined || v === null ? ALL_KNOB_DEFAULTS[k] : num(v, `knob.${k}`)
  })
}

/** One row of the meta-model: task columns then knob columns (FEATURE_NAMES order). */
export function featureVector (task: FeatureTask, knobs: Partial<Record<string, number>>): number[] {
  return [...taskFeatures(task), ...knobFeatures(knobs)]
}
