import { existsSync, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp'
import type { Backend, EngineInfo, GpuInfo, ModelDescriptor } from '../records/types.js'
import { SwarmtuneError, errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { kvNumber, readGgufHeader } from './gguf-reader.js'
import { describeGguf } from './models.js'
import { lookupDraft } from './speculative.js'
import type {
  BatchOutcome, Engine, EngineSession, InferenceRequest, Method, ModelSpec, RequestOutcome, Support
} from './types.js'

/**
 * The llama.cpp engine, over node-llama-cpp 3.21.1 (prebuilt binaries only: `build: 'never'`,
 * `skipDownload: true`, so it never compiles or touches the network).
 *
 * Decoding is greedy and driven token by token from our code, so every method is measured on the
 * same loop and lossless methods can be checked token for token against the baseline:
 * - prefix cache: before a request, the sequence's KV cache is trimmed to the longest common
 *   prefix with the new prompt and only the rest is evaluated; without it the sequence is cleared.
 * - continuous batching: `parallel` sequences of one context, one worker loop per sequence that
 *   takes the next request as soon as its previous one ends; node-llama-cpp batches the pending
 *   evaluations of all sequences into one llama_decode per event-loop cycle.
 * - speculative decoding (prompt lookup or draft model) is our own draft → verify loop, NOT
 *   node-llama-cpp's `tokenPredictor`: in 3.21.1 its `_speculativeEvaluate` never fills the
 *   validated-token list (at most one predicted token per round is accepted) and the raw
 *   `evaluate()` loop never calls the predictor's `updateInputTokens` (DESIGN.md §3). Ours
 *   evaluates [last, d1..dk] in one batch with logits for every position (controlledEvaluate),
 *   accepts the longest prefix of the draft that matches the greedy predictions plus the model's
 *   own next token, and erases the rejected draft tokens from the KV cache. The output is the
 *   greedy sequence by construction (up to floating-point differences between batched and
 *   single-token evaluation, which the runner's divergence check would expose).
 */

const log_ = log('engine')

export interface LlamaEngineOptions {
  /** config.engine.gpu: 'auto' uses CUDA/Vulkan/Metal when present, 'cpu' forces the CPU */
  gpu?: 'auto' | 'cpu' | 'cuda' | 'vulkan' | 'metal'
  /** CPU threads when a method does not set its own (config.engine.threads); 0 = all math cores */
  threads?: number
  /** cap on the per-sequence context size (tokens); the model's training context is the other cap */
  contextSize?: number
}

export class EngineError extends SwarmtuneError {}

const llamas = new Map<string, Promise<Llama>>()

/**
 * One Llama per process and GPU choice: initialisation loads native binaries and runs a
 * self-test in a child process, which is slow, so it is done once and shared.
 */
async function sharedLlama (gpu: NonNullable<LlamaEngineOptions['gpu']>): Promise<Llama> {
  let p = llamas.get(gpu)
  if (p == null) {
    p = (async () => {
      const { getLlama, LlamaLogLevel } = await import('node-llama-cpp')
      try {
        return await getLlama({
          gpu: gpu === 'auto' ? 'auto' : gpu === 'cpu' ? false : gpu,
          build: 'never',
          skipDownload: true,
          progressLogs: false,
          logLevel: LlamaLogLevel.error,
          // 0: each context gets exactly the threads it asks for (the methods' thread knob)
          maxThreads: 0
        })
      } catch (err) {
        throw new EngineError('E_ENGINE_UNAVAILABLE', `llama.cpp backend "${gpu}" unavailable: ${errorMessage(err)}`, { cause: err })
      }
    })()
    llamas.set(gpu, p)
    p.catch(() => llamas.delete(gpu))
  }
  return await p
}

function nodeLlamaCppVersion (): string {
  try {
    // the package's exports map hides package.json: walk up from its resolved entry point
    const req = createRequire(import.meta.url)
    let dir = dirname(req.resolve('node-llama-cpp'))
    for (let i = 0; i < 4; i++, dir = dirname(dir)) {
      const file = join(dir, 'package.json')
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string, version?: string }
        if (pkg.name === 'node-llama-cpp' && pkg.version != null) return pkg.version
      }
    }
    return 'unknown'
  } catch {
    return 'unknown'
  }
}

function abortError (): SwarmtuneError {
  return new EngineError('E_ABORTED', 'inference aborted')
}

interface FileFacts { fileType?: number, vocab?: number, error?: string }
const fileFacts = new Map<string, FileFacts>()

/** Cheap, cached header facts for supports(): never throws. */
function factsOf (path: string): FileFacts {
  let key: string
  try {
    const st = statSync(path)
    key = `${path}\0${st.size}\0${st.mtimeMs}` // a rewritten file is read again
  } catch (err) {
    return { error: `${path}: model file not found (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})` }
  }
  let f = fileFacts.get(key)
  if (f == null) {
    try {
      const h = readGgufHeader(path)
      const tokens = h.kv.get('tokenizer.ggml.tokens')
      f = { fileType: kvNumber(h, 'general.file_type'), vocab: Array.isArray(tokens) ? tokens.length : undefined }
    } catch (err) {
      f = { error: errorMessage(err) }
    }
    fileFacts.set(key, f)
  }
  return f
}

const Q8_FILE_TYPE = 7

/** The file a method loads: the Q8_0 variant for weightBits 8 (or the default file when it already is Q8_0). */
function weightFile (model: ModelSpec, method: Method): string | undefined {
  if (method.knobs.weightBits !== 8) return model.path
  if (model.q8Path != null) return model.q8Path
  return factsOf(model.path).fileType === Q8_FILE_TYPE ? model.path : undefined
}

export async function createLlamaEngine (opts: LlamaEngineOptions = {}): Promise<Engine> {
  const gpu = opts.gpu ?? 'auto'
  const llama = await sharedLlama(gpu)
  const backend: Backend = llama.gpu === false ? 'cpu' : llama.gpu
  let gpus: GpuInfo[] = []
  if (llama.gpu !== false) {
    const names = await llama.getGpuDeviceNames()
    const vram = await llama.getVramState()
    gpus = names.map(name => ({ name, vramMiB: Math.round(vram.total / Math.max(1, names.length) / 2 ** 20) }))
  }
  const info: EngineInfo = { name: 'llama.cpp', version: `node-llama-cpp@${nodeLlamaCppVersion()} llama.cpp ${llama.llamaCppRelease.release}` }
  const defaultThreads = opts.threads ?? 1
  // os.cpus() reads /proc/cpuinfo (~0.1 ms a call on the 2-core VM) and supports() runs for every
  // catalog method of every served batch: the core count does not change while the engine lives
  const cores = cpus().length
  const maxCtx = opts.contextSize ?? 4096
  const models = new Map<string, Promise<LlamaModel>>()
  const sessions = new Set<EngineSession>()

  async function loadModel (path: string): Promise<LlamaModel> {
    readGgufHeader(path) // coded E_MODEL_* errors naming the file, before native code sees it
    let p = models.get(path)
    if (p == null) {
      p = llama.loadModel({ modelPath: path, defaultContextFlashAttention: false }).catch((err: unknown) => {
        models.delete(path)
        throw new EngineError('E_MODEL_LOAD', `${path}: llama.cpp could not load the model: ${errorMessage(err)}`, { cause: err })
      })
      models.set(path, p)
    }
    return await p
  }

  function supports (model: ModelSpec, method: Method): Support {
    try {
      const k = method.knobs
      const file = weightFile(model, method)
      if (file == null) return { ok: false, reason: `weightBits 8 needs a Q8_0 variant of model "${model.name}" (q8Path)` }
      const facts = factsOf(file)
      if (facts.error != null) return { ok: false, reason: facts.error }
      if (k.speculative === 2) {
        if (model.draftPath == null) return { ok: false, reason: `draft-model speculative decoding needs a draft model for "${model.name}" (draftPath)` }
        const d = factsOf(model.draftPath)
        if (d.error != null) return { ok: false, reason: `draft model: ${d.error}` }
        if (d.vocab !== facts.vocab) return { ok: false, reason: `draft model vocabulary (${d.vocab ?? '?'} tokens) differs from the target's (${facts.vocab ?? '?'})` }
      }
      if (k.kvCacheBits < 16 && k.flashAttention !== 1) {
        return { ok: false, reason: 'llama.cpp needs flash attention for a quantized V cache (kvCacheBits < 16 with flashAttention 0)' }
      }
      const threads = k.threads > 0 ? k.threads : defaultThreads
      if (backend === 'cpu' && threads > cores) return { ok: false, reason: `${threads} threads requested, this machine has ${cores} cores` }
      return { ok: true }
    } catch (err) {
      return { ok: false, reason: errorMessage(err) }
    }
  }

  async function describe (model: ModelSpec): Promise<ModelDescriptor> {
    return describeGguf(model.path, model.name)
  }

  async function open (model: ModelSpec, method: Method): Promise<EngineSession> {
    // bad files first, with their own E_MODEL_* codes naming the file
    readGgufHeader(model.path)
    if (method.knobs.weightBits === 8 && model.q8Path != null) readGgufHeader(model.q8Path)
    if (method.knobs.speculative === 2 && model.draftPath != null) readGgufHeader(model.draftPath)
    const s = supports(model, method)
    if (!s.ok) throw new EngineError('E_METHOD_UNSUPPORTED', `method ${method.id} on model ${model.name}: ${s.reason}`)
    const file = weightFile(model, method) as string
    const descriptor = describeGguf(file, model.name)
    const target = await loadModel(file)
    const draft = method.knobs.speculative === 2 ? await loadModel(model.draftPath as string) : undefined
    const session = await openSession({ llama, target, draft, descriptor, method, defaultThreads, maxCtx })
    sessions.add(session)
    const close = session.close.bind(session)
    session.close = async () => { sessions.delete(session); await close() }
    return session
  }

  async function close (): Promise<void> {
    for (const s of [...sessions]) await s.close()
    for (const p of models.values()) {
      try { await (await p).dispose() } catch { /* already reported by open() */ }
    }
    models.clear()
  }

  return { info, backend, gpus, supports, describe, open, close }
}

// ---------------------------------------------------------------------------------------------
// Sessions

interface SessionInit {
  llama: Llama
  target: LlamaModel
  draft?: LlamaModel
  descriptor: ModelDescriptor
  method: Method
  defaultThreads: number
  maxCtx: number
}

interface Worker {
  seq: LlamaContextSequence
  draftSeq?: LlamaContextSequence
}

type MutableSession = EngineSession & { close: () => Promise<void> }

/** What decoding a request needs from its session (fixed for the session's life). */
interface DecodeContext {
  target: LlamaModel
  knobs: Method['knobs']
  /** put before every prompt, when the model wants a BOS token */
  bos?: Token
}

/** The session's contexts (target, and draft for draft-model speculation) and one worker per `parallel` sequence. */
async function createWorkers (init: SessionInit): Promise<{ contexts: LlamaContext[], workers: Worker[] }> {
  const { llama, target, draft, method } = init
  const k = method.knobs
  const threads = k.threads > 0 ? k.threads : init.defaultThreads > 0 ? init.defaultThreads : llama.cpuMathCores
  const trainCtx = target.trainContextSize > 0 ? target.trainContextSize : 2048
  const contextSize = Math.min(trainCtx, init.maxCtx)
  const kvType = k.kvCacheBits === 8 ? 'Q8_0' : k.kvCacheBits === 4 ? 'Q4_0' : undefined
  const contexts: LlamaContext[] = []
  const makeContext = async (model: LlamaModel, batchSize: number): Promise<LlamaContext> => {
    try {
      const ctx = await model.createContext({
        contextSize,
        sequences: k.parallel,
        batchSize,
        flashAttention: k.flashAttention === 1,
        threads,
        failedCreationRemedy: false,
        ...(kvType != null ? { experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType } : {})
      })
      contexts.push(ctx)
      return ctx
    } catch (err) {
      for (const c of contexts) await c.dispose()
      throw new EngineError('E_METHOD_UNSUPPORTED', `method ${method.id}: llama.cpp could not create the context: ${errorMessage(err)}`, { cause: err })
    }
  }
  const ctx = await makeContext(target, Math.min(k.batchSize, contextSize * k.parallel))
  const draftCtx = draft != null ? await makeContext(draft, Math.min(k.batchSize, contextSize * k.parallel)) : undefined
  const workers: Worker[] = []
  for (let i = 0; i < k.parallel; i++) {
    workers.push({ seq: ctx.getSequence(), ...(draftCtx != null ? { draftSeq: draftCtx.getSequence() } : {}) })
  }
  return { contexts, workers }
}

/** Trim the sequence state to the longest common prefix with `tokens` (at least one token left to evaluate). */
async function reuseOrClear (seq: LlamaContextSequence, tokens: Token[], reuse: boolean): Promise<number> {
  if (!reuse) {
    if (seq.nextTokenIndex > 0) await seq.clearHistory()
    return 0
  }
  const { firstDifferentIndex } = seq.compareContextTokens(tokens)
  const keep = Math.min(firstDifferentIndex, tokens.length - 1)
  if (keep < seq.nextTokenIndex) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }])
  return keep
}

/** Plain greedy decoding of `tokens`' continuation. `emit` returns false when the output is full. */
async function greedyDecode (seq: LlamaContextSequence, tokens: Token[], emit: (t: number) => boolean, signal: AbortSignal | undefined): Promise<void> {
  const gen = seq.evaluate(tokens, { temperature: 0 })
  try {
    for await (const t of gen) {
      if (signal?.aborted === true) throw abortError()
      if (!emit(t)) break
    }
  } finally {
    await gen.return()
  }
}

async function runOne (dc: DecodeContext, w: Worker, req: InferenceRequest, signal: AbortSignal | undefined, queueMs: number): Promise<RequestOutcome> {
  const { target, knobs: k } = dc
  const start = performance.now()
  const text = req.tokens != null ? req.tokens as Token[] : target.tokenize(req.prompt)
  const prompt = dc.bos != null ? [dc.bos, ...text] : text
  if (prompt.length === 0) throw new EngineError('E_BAD_REQUEST', 'empty prompt')
  const maxTokens = Math.max(0, Math.floor(req.maxTokens))
  const need = prompt.length + maxTokens + k.draftTokens + 1
  if (need > w.seq.contextSize) throw new EngineError('E_CONTEXT_OVERFLOW', `prompt (${prompt.length} tokens) + ${maxTokens} output tokens exceed the context (${w.seq.contextSize})`)
  const cached = await reuseOrClear(w.seq, prompt, k.prefixCache === 1)
  if (w.draftSeq != null && k.prefixCache !== 1 && w.draftSeq.nextTokenIndex > 0) await w.draftSeq.clearHistory()
  const out: number[] = []
  let firstAt = start
  let lastAt = start
  let drafted = 0
  let accepted = 0
  const emit = (t: number): boolean => {
    const now = performance.now()
    if (out.length === 0) firstAt = now
    lastAt = now
    out.push(t)
    return out.length < maxTokens
  }
  if (maxTokens > 0) {
    if (k.speculative === 0) {
      await greedyDecode(w.seq, prompt.slice(cached), emit, signal)
    } else {
      const r = await speculativeDecode(dc, w, prompt, cached, maxTokens, emit, signal)
      drafted = r.drafted
      accepted = r.accepted
    }
  }
  return {
    text: target.detokenize(out as Token[]),
    tokens: out,
    promptTokens: prompt.length,
    outputTokens: out.length,
    ttftMs: (out.length > 0 ? firstAt : performance.now()) - start,
    latencyMs: (out.length > 0 ? lastAt : performance.now()) - start,
    queueMs,
    cachedPromptTokens: cached,
    ...(k.speculative > 0 ? { draftedTokens: drafted, acceptedDraftTokens: accepted } : {})
  }
}

/** Our draft → verify loop (see the file comment). `emit` returns false when the output is full. */
async function speculativeDecode (dc: DecodeContext, w: Worker, prompt: Token[], cached: number, maxTokens: number,
  emit: (t: number) => boolean, signal: AbortSignal | undefined): Promise<{ drafted: number, accepted: number }> {
  const { target, knobs: k } = dc
  const greedy = { token: true, options: { temperature: 0 } } as const
  const tail = prompt.slice(cached)
  const first = await w.seq.controlledEvaluate(tail.map((t, i) => i === tail.length - 1 ? [t, { generateNext: greedy }] : t))
  let last = first[tail.length - 1]?.next.token
  if (last == null) throw new EngineError('E_ENGINE', 'no token sampled after the prompt')
  const history: number[] = [...prompt]
  let drafted = 0
  let accepted = 0
  if (target.isEogToken(last as Token) || !emit(last)) return { drafted, accepted }
  history.push(last)
  for (;;) {
    if (signal?.aborted === true) throw abortError()
    const room = maxTokens - (history.length - prompt.length) // tokens still allowed, `last` counted
    const want = Math.min(k.draftTokens, Math.max(0, room - 1))
    const draftTokens = want === 0
      ? []
      : k.speculative === 1
        ? lookupDraft(history, want)
        : await draftModelTokens(w.draftSeq as LlamaContextSequence, history, want)
    const input = [last, ...draftTokens].map(t => [t as Token, { generateNext: greedy }] as [Token, { generateNext: typeof greedy }])
    const res = await w.seq.controlledEvaluate(input)
    const preds = res.map(r => r?.next.token)
    let n = 0
    while (n < draftTokens.length && preds[n] === draftTokens[n]) n++
    drafted += draftTokens.length
    accepted += n
    if (n < draftTokens.length) {
      // roll back the KV cache: the last (draft length - n) evaluated tokens were rejected
      const end = w.seq.nextTokenIndex
      await w.seq.eraseContextTokenRanges([{ start: end - (draftTokens.length - n), end }])
    }
    const next = preds[n]
    if (next == null) throw new EngineError('E_ENGINE', 'no token sampled during verification')
    for (const t of [...draftTokens.slice(0, n), next]) {
      if (target.isEogToken(t as Token)) return { drafted, accepted }
      history.push(t)
      if (!emit(t)) return { drafted, accepted }
    }
    last = next
  }
}

/** Greedy draft of up to `want` tokens continuing `history` with the draft model (its KV reused across rounds). */
async function draftModelTokens (dseq: LlamaContextSequence, history: number[], want: number): Promise<number[]> {
  const h = history as Token[]
  const { firstDifferentIndex } = dseq.compareContextTokens(h)
  const keep = Math.min(firstDifferentIndex, h.length - 1)
  if (keep < dseq.nextTokenIndex) await dseq.eraseContextTokenRanges([{ start: keep, end: dseq.nextTokenIndex }])
  const outTokens: number[] = []
  const gen = dseq.evaluate(h.slice(keep), { temperature: 0 })
  try {
    for await (const t of gen) {
      outTokens.push(t)
      if (outTokens.length >= want) break
    }
  } finally {
    await gen.return()
  }
  return outTokens
}

/**
 * Continuous batching: each worker takes the next request as soon as its previous one ends; the
 * first failure stops every worker from taking more and is rethrown (coded).
 */
async function runOnWorkers (dc: DecodeContext, workers: readonly Worker[], requests: InferenceRequest[], signal: AbortSignal | undefined): Promise<BatchOutcome> {
  const t0 = performance.now()
  const results: RequestOutcome[] = new Array(requests.length)
  let nextIndex = 0
  let failure: unknown
  const loop = async (w: Worker): Promise<void> => {
    while (failure == null && nextIndex < requests.length) {
      if (signal?.aborted === true) throw abortError()
      const i = nextIndex++
      results[i] = await runOne(dc, w, requests[i], signal, performance.now() - t0)
    }
  }
  await Promise.all(workers.map(async w => {
    try { await loop(w) } catch (err) { failure ??= err }
  }))
  if (failure != null) {
    if (failure instanceof SwarmtuneError) throw failure
    throw new EngineError('E_ENGINE', `inference failed: ${errorMessage(failure)}`, { cause: failure })
  }
  return { requests: results, wallMs: performance.now() - t0 }
}

async function openSession (init: SessionInit): Promise<MutableSession> {
  const { target, descriptor, method } = init
  const { contexts, workers } = await createWorkers(init)
  const bos = target.tokens.bos
  const dc: DecodeContext = {
    target,
    knobs: method.knobs,
    ...(bos != null && target.tokens.shouldPrependBosToken ? { bos } : {})
  }
  let busy = false
  let closed = false

  async function runBatch (requests: InferenceRequest[], opts: { signal?: AbortSignal } = {}): Promise<BatchOutcome> {
    if (closed) throw new EngineError('E_SESSION_CLOSED', 'session is closed')
    if (busy) throw new EngineError('E_SESSION_BUSY', 'runBatch is already running on this session')
    if (opts.signal?.aborted === true) throw abortError()
    busy = true
    try {
      return await runOnWorkers(dc, workers, requests, opts.signal)
    } finally {
      busy = false
    }
  }

  async function reset (): Promise<void> {
    if (busy) throw new EngineError('E_SESSION_BUSY', 'cannot reset while runBatch is running')
    for (const w of workers) {
      if (w.seq.nextTokenIndex > 0) await w.seq.clearHistory()
      if (w.draftSeq != null && w.draftSeq.nextTokenIndex > 0) await w.draftSeq.clearHistory()
    }
  }

  const session: MutableSession = {
    model: descriptor,
    method,
    tokenize: text => target.tokenize(text) as number[],
    runBatch,
    reset,
    close: async () => {
      if (closed) return
      closed = true
      for (const c of contexts) {
        try { await c.dispose() } catch (err) { log_.error('context dispose failed: %s', errorMessage(err)) }
      }
    }
  }
  return session
}
