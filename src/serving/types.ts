import type { EngineConfig } from '../engine/types.js'
import type { MetaModel } from '../meta/selector.js'
import type { ResultMetrics } from '../records/types.js'
import { SwarmtuneError } from '../util/errors.js'
import type { Objective } from '../contracts/objective.js'

/** Types shared by the serving modules and its routes (no module of the folder imports service.ts). */

/** The slice of the node's config serving reads. */
export interface ServingConfig {
  dataDir: string
  engine: EngineConfig
  hardware: { pricePerHour: number }
  meta: { explorationRate: number }
  openai?: OpenAiModelsConfig
}

/** Config `openai`: names OpenAI clients send that are not model names here. */
export interface OpenAiModelsConfig {
  /** client name → model name, e.g. { "gpt-4o-mini": "small" } */
  aliases?: Record<string, string>
  /** the model that answers any other unknown name; null or absent: 404 model_not_found */
  defaultForUnknown?: string | null
}

export interface MetaSource {
  current: () => MetaModel | null
  /** how far the prediction for a served task was off (issue #17: realized vs predicted) */
  observeServed?: (predictedWallMs: number | null | undefined, realizedWallMs: number) => number | null
}

export interface ServeRequest {
  /** model name (config.engine.models or an embedded model); default config.engine.defaultModel */
  model?: string
  prompts: string[]
  /** output cap per prompt (one number for all, or one per prompt), default 32 */
  maxTokens?: number | number[]
  objective?: Objective
  budget?: number
  sloTtftMs?: number
  /** force a method (skips selection; still recorded) */
  method?: string
  signal?: AbortSignal
}

export interface ServeOutput {
  text: string
  promptTokens: number
  outputTokens: number
  ttftMs: number
  latencyMs: number
}

export interface ServeResult {
  model: string
  method: string
  /** why this method: meta | safe-default | committee | cold-start | explore | forced */
  source: string
  explored: boolean
  taskClass: string
  outputs: ServeOutput[]
  metrics: ResultMetrics
  /** the workload features the choice was made on */
  features: Record<string, number>
  /**
   * where serve() spent its time: `tokenizeMs` (prompts on the model's tokenizer, for the
   * features; the engine reuses these tokens), `selectMs` (the method choice), `engineMs` (the
   * run), `totalMs` (all of serve(), queue wait included)
   */
  timings: { tokenizeMs: number, selectMs: number, engineMs: number, totalMs: number }
}

export type ServeFn = (req: ServeRequest) => Promise<ServeResult>

export class ServingError extends SwarmtuneError {}

/** Output cap per prompt when a batch (or a recommend request with prompts) names none. */
export const DEFAULT_MAX_TOKENS = 32
