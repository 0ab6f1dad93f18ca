import type { Objective } from '../contracts/objective.js'
import type { Backend } from '../records/types.js'

/**
 * Task class: the coarse key votes are cast and tallied on (docs/VOTES.md).
 *
 *   v1|m=<model id>|w=<prompt>-<prefix>-<batch>|b=<backend>|o=<objective>
 *
 * - model: the model descriptor id (a hash of the GGUF's architecture numbers, file type and
 *   name), so every peer running the same file lands in the same class;
 * - workload, three buckets of the token-level features every record carries:
 *   prompt length (promptTokensMean: s < 128 ≤ m < 1024 ≤ l), shared prefix
 *   (max(sharedPrefixRatio, reusablePrefixRatio) ≥ 0.5: p, else n), batch size (requests: 1, 2-4 → 4, > 4 → n);
 *   these are the three axes on which the methods trade places (prefix caching needs a shared
 *   prefix, continuous batching needs several requests, chunked prefill/flash attention matter
 *   for long prompts);
 * - backend: cpu | cuda | vulkan | metal | other (a GPU and a CPU never share a ranking);
 * - objective: throughput | latency | cost (different objectives give different rankings).
 * Coarse on purpose: a class must collect votes from many peers to be worth tallying, while the
 * meta-model handles the fine-grained features.
 */
export const TASK_CLASS_VERSION = 'v1'

export interface TaskClassInput {
  modelId: string
  features: Record<string, number>
  backend: Backend | string
  objective: Objective
}

function feature (f: Record<string, number>, names: string[]): number | undefined {
  for (const n of names) {
    const v = f[n]
    if (typeof v === 'number' && Number.isFinite(v)) return v
  }
  return undefined
}

export function workloadBucket (f: Record<string, number>): string {
  const prompt = feature(f, ['promptTokensMean', 'promptTokensAvg', 'promptTokens']) ?? 0
  // a prefix shared by all prompts, or reusable from an earlier request: both are what prefix caching exploits
  const prefix = Math.max(feature(f, ['sharedPrefixRatio']) ?? 0, feature(f, ['reusablePrefixRatio']) ?? 0)
  const reqs = feature(f, ['requests', 'batchSize', 'concurrency', 'n']) ?? 1
  const p = prompt < 128 ? 's' : prompt < 1024 ? 'm' : 'l'
  const x = prefix >= 0.5 ? 'p' : 'n'
  const b = reqs <= 1 ? '1' : reqs <= 4 ? '4' : 'n'
  return `${p}-${x}-${b}`
}

/** The class key without its objective (records have no objective; votes and answers do). */
export function classBase (modelId: string, features: Record<string, number>, backend: Backend | string): string {
  const model = modelId.replace(/[^A-Za-z0-9._:+-]/g, '_').slice(0, 64)
  const b = /^[a-z]{1,16}$/.test(backend) ? backend : 'other'
  return `${TASK_CLASS_VERSION}|m=${model}|w=${workloadBucket(features)}|b=${b}`
}

export function classKeyOf (base: string, objective: Objective): string {
  return `${base}|o=${objective}`
}

export function baseOfKey (key: string): string {
  const i = key.lastIndexOf('|o=')
  return i < 0 ? key : key.slice(0, i)
}

export function taskClassKey (t: TaskClassInput): string {
  return classKeyOf(classBase(t.modelId, t.features, t.backend), t.objective)
}

export interface ParsedTaskClass {
  model: string
  workload: string
  backend: string
  objective: string
}

export function parseTaskClassKey (key: string): ParsedTaskClass | undefined {
  const m = /^v1\|m=([^|]+)\|w=([^|]+)\|b=([^|]+)\|o=([^|]+)$/.exec(key)
  if (m == null) return undefined
  return { model: m[1], workload: m[2], backend: m[3], objective: m[4] }
}
