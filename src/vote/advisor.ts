import { workloadFeatures } from '../meta/workload-features.js'
import type { Objective } from '../contracts/objective.js'
import type { ModelDescriptor } from '../records/types.js'
import { SwarmtuneError } from '../util/errors.js'
import type { Selection, SelectTask } from '../meta/selector.js'
import type { CommitteeRanking } from './tally.js'

/**
 * The decision behind a recommendation or a served batch (pure): the meta-model's selection,
 * replaced by the committee's ranking while this node is cold for the task's class.
 *
 * Cold = fewer than `coldOwnRecords` of this node's own successful measurements (benchmark or
 * serving) in the class, or fewer than 2 distinct methods among them. Rationale: with no own
 * measurements in a class, this node's model only extrapolates other machines' claims; the
 * committee aggregates many peers' models with reputation earned against real measurements,
 * which is the better zero-shot guess. Once the node has measured the class itself, its own
 * model wins. With no ballot for the class, the meta-model's answer (or its documented
 * cold-start rule) stands.
 */
export const DEFAULT_COLD_OWN_RECORDS = 6

/** `safe-default`: a fixed rule decided, the learner not having shown it beats it (meta/safe-default.ts) */
export type AnswerSource = 'meta' | 'safe-default' | 'committee' | 'cold-start'

export interface AdviceEntry {
  method: string
  predicted: { speedup: number | null, wallMs: number | null, ttftMs: number | null, cost: number | null }
  uncertainty: number
  feasible: boolean
  reason?: string
  /** committee Borda score in [0, 1], when the committee ranked it */
  committeeScore?: number
}

export interface Advice {
  objective: Objective
  choice: string
  ranking: AdviceEntry[]
  source: AnswerSource
  /** this node has not measured the task's class enough itself */
  coldStart: boolean
  explored: boolean
  reason?: string
  classKey: string
}

export interface AdviseInput {
  selection: Selection
  classKey: string
  committee?: CommitteeRanking
  own: { records: number, methods: number }
  coldOwnRecords?: number
}

export function isCold (own: { records: number, methods: number }, threshold = DEFAULT_COLD_OWN_RECORDS): boolean {
  return own.records < threshold || own.methods < 2
}

export function advise (input: AdviseInput): Advice {
  const sel = input.selection
  const cold = isCold(input.own, input.coldOwnRecords)
  const byMethod = new Map(sel.ranking.map(r => [r.method, r]))
  const base: AdviceEntry[] = sel.ranking.map(r => ({ method: r.method, predicted: r.predicted, uncertainty: r.uncertainty, feasible: r.feasible, ...(r.reason != null ? { reason: r.reason } : {}) }))
  const committee = input.committee
  const usable = committee != null && committee.voters > 0 ? committee.ranking.filter(e => byMethod.has(e.method)) : []
  if (cold && usable.length > 0 && !sel.explored) {
    const scores = new Map(usable.map(e => [e.method, e.score]))
    const order = new Map(usable.map((e, i) => [e.method, i]))
    const metaOrder = new Map(sel.ranking.map((r, i) => [r.method, i]))
    // feasible first (budget/SLO still hold), then committee order, then the model's order for the rest
    const ranking = base.map(e => ({ ...e, ...(scores.has(e.method) ? { committeeScore: scores.get(e.method) } : {}) }))
      .sort((a, b) => (Number(b.feasible) - Number(a.feasible)) ||
        ((order.get(a.method) ?? Infinity) - (order.get(b.method) ?? Infinity)) ||
        ((metaOrder.get(a.method) ?? 0) - (metaOrder.get(b.method) ?? 0)))
    return {
      objective: sel.objective,
      choice: ranking[0].method,
      ranking,
      source: 'committee',
      coldStart: true,
      explored: false,
      reason: `cold for this class (${input.own.records} own records, ${input.own.methods} methods): committee of ${committee!.voters} voters`,
      classKey: input.classKey
    }
  }
  return {
    objective: sel.objective,
    choice: sel.choice,
    ranking: base,
    source: sel.coldStart ? 'cold-start' : sel.safeDefault != null ? 'safe-default' : 'meta',
    coldStart: cold || sel.coldStart,
    explored: sel.explored,
    ...(sel.reason != null ? { reason: sel.reason } : {}),
    classKey: input.classKey
  }
}

// ------------------------------------------------------------------ task resolution

/** Model fields the meta-model conditions on. */
export type ModelLike = SelectTask['model'] & { id?: string, name?: string }

export class TaskError extends SwarmtuneError {}

/**
 * A model named by id or name is looked up (the history's descriptors and the node's own models);
 * a descriptor with the architecture numbers is used as given (an unseen model: zero-shot).
 */
export function resolveModel (ref: { id?: string, name?: string, params?: number, layers?: number, embd?: number, heads?: number, kvHeads?: number, weightBits?: number, ctx?: number }, lookup: (idOrName: string) => ModelDescriptor | undefined): ModelLike {
  const known = (ref.id != null ? lookup(ref.id) : undefined) ?? (ref.name != null ? lookup(ref.name) : undefined)
  if (known != null) return known
  if (ref.params != null && ref.layers != null && ref.embd != null && ref.heads != null) {
    return {
      id: ref.id,
      name: ref.name,
      params: ref.params,
      layers: ref.layers,
      embd: ref.embd,
      heads: ref.heads,
      kvHeads: ref.kvHeads ?? ref.heads,
      weightBits: ref.weightBits ?? 16,
      ctx: ref.ctx ?? 4096
    }
  }
  throw new TaskError('E_UNKNOWN_MODEL', `unknown model ${JSON.stringify(ref.id ?? ref.name ?? '')}: give its id or name as known to this peer, or a descriptor with params, layers, embd and heads`)
}

/**
 * Documented approximation when no tokenizer is at hand (a peer that does not serve the model):
 * one token per 4 characters of each whitespace-separated word (at least one per word), with
 * token ids derived from the word, so shared prefixes stay shared. English BPE/SentencePiece
 * vocabularies give 1-1.5 tokens per word; this lands in the same range.
 */
export function approximateTokenize (text: string): number[] {
  const out: number[] = []
  for (const word of text.match(/\S+/g) ?? []) {
    let h = 2166136261
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619) >>> 0
    const n = Math.max(1, Math.ceil(word.length / 4))
    for (let i = 0; i < n; i++) out.push((h + i) % 1_000_003)
  }
  return out
}

/** Workload features of a batch of prompts that arrive together (concurrency = batch size). */
export function featuresOfPrompts (prompts: string[], maxTokens: number | number[], tokenize: (text: string) => number[] = approximateTokenize): Record<string, number> {
  const toks = prompts.map(p => tokenize(p))
  const caps = Array.isArray(maxTokens) ? maxTokens : prompts.map(() => maxTokens)
  return workloadFeatures({ prompts: toks, maxTokens: caps, concurrency: Math.max(1, prompts.length) })
}

export interface HardwareLike { id?: string, cpuModel?: string, cores: number, threads: number, ramMiB: number, gpus: Array<{ vramMiB: number, name?: string }>, backend: string, pricePerHour?: number, measured?: { memBwGBs: number, computeTflops: number } }

/** The task's hardware as the features read it: names too (the spec table's capability columns), and a measured capability when attached. */
export function hardwareTask (hw: HardwareLike): SelectTask['hardware'] {
  return {
    id: hw.id,
    ...(hw.cpuModel != null ? { cpuModel: hw.cpuModel } : {}),
    cores: hw.cores,
    threads: hw.threads,
    ramMiB: hw.ramMiB,
    gpus: hw.gpus.map(g => ({ vramMiB: g.vramMiB, ...(g.name != null ? { name: g.name } : {}) })),
    backend: hw.backend,
    pricePerHour: hw.pricePerHour,
    ...(hw.measured != null ? { measured: hw.measured } : {})
  }
}
