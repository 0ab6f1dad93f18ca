import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { renderChat } from '../engine/chat.js'
import type { InferenceRequest } from '../engine/types.js'
import { SwarmtuneError } from '../util/errors.js'
import { stableId } from '../records/stable-id.js'
import { createRng, pick, randInt } from '../util/random.js'

/**
 * Deterministic benchmark workloads. Five families, each shaped to favour a different
 * acceleration method:
 *   chat      shared system prompt + short multi-turn user turns  → prefix caching, batching
 *   docqa     one long shared document + different questions      → prefix caching
 *   summarize long distinct prompts, short outputs                → prefill speed (flash attn, batch size)
 *   codeedit  prompt holds code, the answer rewrites it           → prompt-lookup speculation
 *   classify  many short requests, 1-4 output tokens, high conc.  → continuous batching
 * Same family + params + seed → the same prompts, byte for byte, on every machine.
 *
 * Lengths are in words (≈ tokens for the embedded SentencePiece vocabulary; the recorded
 * features are computed from the real token ids, see features.ts).
 *
 * Concurrency is the arrival pattern: the runner hands the engine `concurrency` requests at a
 * time (one wave), so a method with `parallel` sequences can overlap at most
 * min(parallel, concurrency) of them.
 */

export const FAMILIES = ['chat', 'docqa', 'summarize', 'codeedit', 'classify'] as const
export type Family = typeof FAMILIES[number]
export type Scale = 'tiny' | 'default'
export const SCALES: readonly Scale[] = ['tiny', 'default']

export interface WorkloadParams {
  /** number of requests */
  requests: number
  /** approximate prompt length in words (family-specific meaning, see generators) */
  promptLength: number
  /** output cap per request, tokens */
  maxTokens: number
  /** requests in flight together */
  concurrency: number
  seed: number
}

export interface Workload {
  family: string
  /** generator name + parameters, valid as a record workload name */
  name: string
  params: WorkloadParams
  requests: InferenceRequest[]
}

/*
 * Default sizes: the whole suite (all methods × one workload per family, warm-up + 3 repeats)
 * must run in minutes on 2 shared cores with the ~60M `small` model (~350 prompt tok/s,
 * ~120 output tok/s per thread). `tiny` keeps integration tests on the tiny model fast.
 */
const DEFAULTS: Record<Scale, Record<Family, Omit<WorkloadParams, 'seed'>>> = {
  // ≈ 1,750 prompt + 150 output tokens per pass over all five (≈ 6 s for `small` F16 on one idle core)
  default: {
    chat: { requests: 4, promptLength: 36, maxTokens: 8, concurrency: 2 },
    docqa: { requests: 3, promptLength: 80, maxTokens: 8, concurrency: 1 },
    summarize: { requests: 2, promptLength: 80, maxTokens: 6, concurrency: 1 },
    codeedit: { requests: 2, promptLength: 48, maxTokens: 32, concurrency: 1 },
    classify: { requests: 8, promptLength: 16, maxTokens: 2, concurrency: 4 }
  },
  tiny: {
    chat: { requests: 4, promptLength: 24, maxTokens: 6, concurrency: 2 },
    docqa: { requests: 3, promptLength: 48, maxTokens: 6, concurrency: 1 },
    summarize: { requests: 2, promptLength: 40, maxTokens: 4, concurrency: 1 },
    codeedit: { requests: 2, promptLength: 32, maxTokens: 12, concurrency: 1 },
    classify: { requests: 6, promptLength: 10, maxTokens: 2, concurrency: 3 }
  }
}

export function isFamily (s: string): s is Family {
  return (FAMILIES as readonly string[]).includes(s)
}

export function defaultParams (family: Family, scale: Scale = 'default', seed = 1): WorkloadParams {
  return { ...DEFAULTS[scale][family], seed }
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'one you were her all she there would their we him been has when who will more no if out so said what up its ' +
  'about into than them can only other new some could time these two may then do first any my now such like our ' +
  'over man me even most made after also did many before must through back years where much your way well down ' +
  'should because each just those people how too little state good very make world still own see men work long ' +
  'get here between both life being under never day same another know while last might us great old year off ' +
  'come since against go came right used take three system model data node peer record method cache batch token ' +
  'memory speed queue signal table river stone light water garden window market letter number answer question'
).split(' ')

const TOPICS = ['weather', 'travel', 'cooking', 'music', 'history', 'gardening', 'finance', 'sports', 'science', 'books']
const LABELS = ['positive', 'negative', 'neutral', 'spam', 'question', 'complaint']

function words (rng: () => number, n: number): string {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(pick(rng, WORDS))
  return out.join(' ')
}

function sentences (rng: () => number, n: number): string {
  const out: string[] = []
  let left = n
  while (left > 0) {
    const len = Math.min(left, randInt(rng, 6, 14))
    const s = words(rng, len)
    out.push(s.charAt(0).toUpperCase() + s.slice(1) + '.')
    left -= len
  }
  return out.join(' ')
}

/** Conversations are interleaved so that each wave holds one turn of `concurrency` conversations. */
function chat (p: WorkloadParams, rng: () => number): InferenceRequest[] {
  const system = `System: You are a helpful assistant. ${sentences(rng, Math.max(8, p.promptLength - 6))}\n`
  const conversations = Math.max(1, Math.min(p.concurrency, p.requests))
  const histories = Array.from({ length: conversations }, () => '')
  const out: InferenceRequest[] = []
  for (let i = 0; i < p.requests; i++) {
    const c = i % conversations
    const topic = pick(rng, TOPICS)
    const turn = `User: Tell me about ${topic}, ${words(rng, randInt(rng, 6, 12))}?\n`
    out.push({ prompt: system + histories[c] + turn + 'Assistant:', maxTokens: p.maxTokens })
    // a fixed synthetic assistant reply keeps the history independent of the model's output
    histories[c] += turn + `Assistant: ${sentences(rng, randInt(rng, 6, 10))}\n`
  }
  return out
}

function docqa (p: WorkloadParams, rng: () => number): InferenceRequest[] {
  const doc = `Document:\n${sentences(rng, p.promptLength)}\n`
  return Array.from({ length: p.requests }, () => ({
    prompt: `${doc}Question: What does the document say about ${pick(rng, WORDS)} and ${pick(rng, WORDS)}?\nAnswer:`,
    maxTokens: p.maxTokens
  }))
}

function summarize (p: WorkloadParams, rng: () => number): InferenceRequest[] {
  return Array.from({ length: p.requests }, () => ({
    prompt: `Article:\n${sentences(rng, p.promptLength)}\nSummarize the article in one sentence.\nSummary:`,
    maxTokens: p.maxTokens
  }))
}

function codeBlock (rng: () => number, targetWords: number): string {
  const lines: string[] = []
  let n = 0
  let f = 0
  while (n < targetWords) {
    const name = `${pick(rng, WORDS)}_${pick(rng, WORDS)}`
    const a = pick(rng, ['value', 'count', 'item', 'total', 'index'])
    const b = pick(rng, ['limit', 'size', 'step', 'offset', 'factor'])
    lines.push(`function ${name}${f++} (${a}, ${b}) {`)
    lines.push(`  let result = ${a} * ${b} + ${randInt(rng, 1, 99)}`)
    lines.push(`  if (result > ${b}) { result = result - ${a} }`)
    lines.push('  return result')
    lines.push('}')
    n += 24
  }
  return lines.join('\n')
}

function codeedit (p: WorkloadParams, rng: () => number): InferenceRequest[] {
  return Array.from({ length: p.requests }, () => {
    const code = codeBlock(rng, p.promptLength)
    return {
      prompt: `Rewrite the following code, renaming result to output and keeping everything else the same.\n\n${code}\n\nRewritten code:\n`,
      maxTokens: p.maxTokens
    }
  })
}

function classify (p: WorkloadParams, rng: () => number): InferenceRequest[] {
  return Array.from({ length: p.requests }, () => ({
    prompt: `Classify the message as ${LABELS.join(', ')}.\nMessage: ${words(rng, Math.max(3, p.promptLength - 12))}\nLabel:`,
    maxTokens: Math.max(1, Math.min(4, p.maxTokens))
  }))
}

const GENERATORS: Record<Family, (p: WorkloadParams, rng: () => number) => InferenceRequest[]> = {
  chat, docqa, summarize, codeedit, classify
}

export function workloadName (family: string, p: WorkloadParams): string {
  return `${family}-n${p.requests}-p${p.promptLength}-o${p.maxTokens}-c${p.concurrency}-s${p.seed}`
}

function checkParams (p: WorkloadParams): void {
  for (const k of ['requests', 'promptLength', 'maxTokens', 'concurrency'] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 1) throw new SwarmtuneError('E_WORKLOAD_PARAMS', `workload ${k} must be a positive integer, got ${p[k]}`)
  }
  if (!Number.isInteger(p.seed)) throw new SwarmtuneError('E_WORKLOAD_PARAMS', `workload seed must be an integer, got ${p.seed}`)
}

/** One workload of a family; unspecified params come from the scale's defaults. */
export function generateWorkload (family: Family, params: Partial<WorkloadParams> = {}, scale: Scale = 'default'): Workload {
  if (!isFamily(family)) throw new SwarmtuneError('E_WORKLOAD_FAMILY', `unknown workload family "${String(family)}" (known: ${FAMILIES.join(', ')})`)
  const p: WorkloadParams = { ...defaultParams(family, scale), ...params }
  checkParams(p)
  // the family name is mixed into the seed so two families with one seed do not share text
  const rng = createRng((p.seed * 1_000_003 + FAMILIES.indexOf(family) * 7919) >>> 0)
  return { family, name: workloadName(family, p), params: p, requests: GENERATORS[family](p, rng) }
}

/** One workload of each requested family (all five by default). */
export function standardWorkloads (scale: Scale = 'default', families: readonly string[] = FAMILIES, seed = 1): Workload[] {
  return families.map(f => {
    if (!isFamily(f)) throw new SwarmtuneError('E_WORKLOAD_FAMILY', `unknown workload family "${f}" (known: ${FAMILIES.join(', ')})`)
    return generateWorkload(f, { seed }, scale)
  })
}

// ---------------------------------------------------------------------------------------------
// Real prompts from a JSONL file in OpenAI chat format: {"messages":[{"role","content"}], "max_tokens"?}

export interface PromptLineError {
  /** 1-based line number */
  line: number
  code: string
  message: string
}

export class PromptImportError extends SwarmtuneError {
  readonly errors: PromptLineError[]
  constructor (message: string, errors: PromptLineError[]) {
    super('E_PROMPTS_INVALID', message)
    this.errors = errors
  }
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool', 'developer'])
const MAX_IMPORT_LINES = 100_000

/** Pure parser: every non-blank line is one request; bad lines are reported, not thrown. */
export function parsePrompts (text: string, defaultMaxTokens = 32): { requests: InferenceRequest[], errors: PromptLineError[] } {
  const requests: InferenceRequest[] = []
  const errors: PromptLineError[] = []
  const lines = text.split(/\r?\n/)
  if (lines.length > MAX_IMPORT_LINES) {
    errors.push({ line: MAX_IMPORT_LINES + 1, code: 'E_PROMPTS_TOO_MANY', message: `more than ${MAX_IMPORT_LINES} lines` })
  }
  lines.slice(0, MAX_IMPORT_LINES).forEach((raw, i) => {
    const line = i + 1
    if (raw.trim() === '') return
    const bad = (code: string, message: string): void => { errors.push({ line, code, message }) }
    let v: unknown
    try { v = JSON.parse(raw) } catch (err) { bad('E_PROMPTS_JSON', `not JSON: ${(err as Error).message}`); return }
    if (v == null || typeof v !== 'object' || Array.isArray(v)) { bad('E_PROMPTS_SCHEMA', 'must be an object with "messages"'); return }
    const o = v as Record<string, unknown>
    if (!Array.isArray(o.messages) || o.messages.length === 0) { bad('E_PROMPTS_SCHEMA', '"messages" must be a non-empty array'); return }
    const messages: Array<{ role: string, content: string }> = []
    for (const [j, m] of (o.messages as unknown[]).entries()) {
      const mo = m as Record<string, unknown> | null
      if (mo == null || typeof mo !== 'object' || typeof mo.role !== 'string' || !ROLES.has(mo.role)) {
        bad('E_PROMPTS_SCHEMA', `messages[${j}].role must be one of ${[...ROLES].join(', ')}`); return
      }
      if (typeof mo.content !== 'string') { bad('E_PROMPTS_SCHEMA', `messages[${j}].content must be a string`); return }
      messages.push({ role: mo.role, content: mo.content })
    }
    let maxTokens = defaultMaxTokens
    if (o.max_tokens !== undefined) {
      if (typeof o.max_tokens !== 'number' || !Number.isInteger(o.max_tokens) || o.max_tokens < 1 || o.max_tokens > 8192) {
        bad('E_PROMPTS_SCHEMA', '"max_tokens" must be an integer in [1, 8192]'); return
      }
      maxTokens = o.max_tokens
    }
    requests.push({ prompt: renderChat(messages), maxTokens })
  })
  return { requests, errors }
}

export interface ImportPromptsOptions {
  concurrency?: number
  /** output cap for lines without max_tokens */
  maxTokens?: number
  /** label used in the workload name (default: the file's base name) */
  label?: string
}

/** A workload of family `imported` from the text of a JSONL file; any bad line fails it (with all line errors). */
export function promptsWorkload (text: string, opts: ImportPromptsOptions = {}): Workload {
  const { requests, errors } = parsePrompts(text, opts.maxTokens ?? 32)
  const where = opts.label ?? 'prompts'
  if (errors.length > 0) {
    const shown = errors.slice(0, 5).map(e => `line ${e.line}: ${e.message} [${e.code}]`).join('; ')
    throw new PromptImportError(`${where}: ${errors.length} bad line(s): ${shown}${errors.length > 5 ? '; ...' : ''}`, errors)
  }
  if (requests.length === 0) throw new PromptImportError(`${where}: no prompts`, [])
  const concurrency = opts.concurrency ?? 1
  const label = where.replace(/\.jsonl?$/i, '').replace(/[^A-Za-z0-9+._-]/g, '_').slice(0, 40) || 'prompts'
  const hash = stableId(requests, 8)
  const maxTokens = Math.max(...requests.map(r => r.maxTokens))
  const meanWords = Math.round(requests.reduce((s, r) => s + r.prompt.split(/\s+/).length, 0) / requests.length)
  return {
    family: 'imported',
    name: `imported-${label}-${hash}`.slice(0, 128),
    params: { requests: requests.length, promptLength: meanWords, maxTokens, concurrency, seed: 0 },
    requests
  }
}

/** importPrompts(file): read a JSONL file of OpenAI-style chat requests. */
export function importPrompts (file: string, opts: ImportPromptsOptions = {}): Workload {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new SwarmtuneError('E_PROMPTS_READ', `cannot read prompts file ${file}: ${(err as Error).message}`)
  }
  return promptsWorkload(text, { label: basename(file), ...opts })
}
