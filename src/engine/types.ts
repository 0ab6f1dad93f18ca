import type { Backend, EngineInfo, GpuInfo, ModelDescriptor } from '../records/types.js'

/**
 * The inference engine seam. bench/, meta/ and serving only see these types, so an HTTP engine
 * (vLLM, SGLang, llama-server) can be added later as another `Engine` without touching them.
 * The llama.cpp implementation (node-llama-cpp 3.21.1) lives in src/engine/llama-engine.ts.
 */

/** Engine knobs of an acceleration method (config/methods.json). All numeric, so the meta-model can learn from them. */
export interface MethodKnobs {
  /** 1 = reuse the KV cache of a shared prompt prefix across requests */
  prefixCache: number
  /** prompt tokens evaluated per batch (small = chunked prefill) */
  batchSize: number
  /** parallel sequences decoded together (continuous batching); 1 = sequential */
  parallel: number
  /** speculative decoding: 0 none, 1 prompt lookup, 2 draft model */
  speculative: number
  /** tokens drafted per speculative round */
  draftTokens: number
  /** 1 = flash attention */
  flashAttention: number
  /** KV cache element bits: 16 (f16), 8 (q8_0), 4 (q4_0) */
  kvCacheBits: number
  /** weight bits of the model file variant to load: 16 (F16) or 8 (Q8_0) */
  weightBits: number
  /** CPU threads; 0 = engine default from config */
  threads: number
}

export interface Method {
  id: string
  description: string
  /** true when the method must give the same greedy tokens as the baseline */
  lossless: boolean
  knobs: MethodKnobs
}

export interface ModelSpec {
  name: string
  /** GGUF file of the default variant */
  path: string
  /** Q8_0 variant of the same model, for weightBits = 8 */
  q8Path?: string
  /** draft model for speculative decoding */
  draftPath?: string
}

export interface InferenceRequest {
  prompt: string
  maxTokens: number
  /**
   * the prompt's tokens on this session's model, when the caller already has them (serving
   * tokenizes for its workload features): the engine then does not tokenize the prompt again
   */
  tokens?: readonly number[]
}

export interface RequestOutcome {
  text: string
  /** generated token ids (greedy), for the lossless check */
  tokens: number[]
  promptTokens: number
  outputTokens: number
  /** from the request's start to its first output token, ms */
  ttftMs: number
  /** from the request's start to its last output token, ms */
  latencyMs: number
  /** time the request waited in runBatch before a sequence took it, ms (client-side TTFT = queueMs + ttftMs) */
  queueMs?: number
  /** prompt tokens whose KV state was reused from the previous request on the sequence (prefix cache) */
  cachedPromptTokens?: number
  /** speculative decoding: tokens drafted, and how many of them the target model accepted */
  draftedTokens?: number
  acceptedDraftTokens?: number
}

export interface BatchOutcome {
  requests: RequestOutcome[]
  wallMs: number
}

export type Support = { ok: true } | { ok: false, reason: string }

/** A model loaded with one method's knobs; runs batches of requests with greedy decoding. */
export interface EngineSession {
  readonly model: ModelDescriptor
  readonly method: Method
  tokenize(text: string): number[]
  runBatch(requests: InferenceRequest[], opts?: { signal?: AbortSignal }): Promise<BatchOutcome>
  /**
   * Forget all cached KV state (every sequence, draft model too), so the next batch starts cold.
   * Prefix caching otherwise carries state across runBatch calls, as a server would; a runner
   * calls this between repeats to measure each repeat alike. Optional for other engines.
   */
  reset?(): Promise<void>
  close(): Promise<void>
}

export interface Engine {
  readonly info: EngineInfo
  readonly backend: Backend
  readonly gpus: GpuInfo[]
  /** whether this engine, on this hardware, can run the method for the model (with the reason if not) */
  supports(model: ModelSpec, method: Method): Support
  /** GGUF metadata → descriptor; errors name the file (E_MODEL_*) */
  describe(model: ModelSpec): Promise<ModelDescriptor>
  open(model: ModelSpec, method: Method): Promise<EngineSession>
  close(): Promise<void>
}

/** One `engine.models` entry: a GGUF path (relative paths resolve against the data dir). */
export interface ModelConfig { name: string, path: string, draftPath?: string, q8Path?: string }

/** The `engine` section of the config. */
export interface EngineConfig {
  gpu: 'auto' | 'cpu' | 'cuda' | 'vulkan' | 'metal'
  threads: number
  defaultModel: string
  models: ModelConfig[]
  /** prepare the default model's files while the daemon starts (default true); optional for older configs */
  prepareOnStart?: boolean
  /**
   * measure this machine's capability at start when it is not cached (engine/capability-probe.ts,
   * about a second); default: as prepareOnStart (the testbed turns both off). Optional for older configs.
   */
  capabilityProbe?: boolean
  /** what own records say about this machine: `full` (default) or `capability` (a class only; engine/hardware.ts) */
  publishHardware?: 'full' | 'capability'
}
