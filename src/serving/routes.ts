import type { ControlApi } from '../contracts/api.js'
import { parseInferRequest } from '../net/infer.js'
import { parseRecommendRequest, type RecommendRequest, type RecommendResponse } from '../net/recommend.js'
import { registerOpenAiRoutes } from './openai.js'
import { SERVED_LOG_SIZE, type ServedChoice } from './served-log.js'
import { ServingError, type OpenAiModelsConfig, type ServeFn } from './types.js'

export interface ServingRoutesInit {
  serve: ServeFn
  recommend: (req: RecommendRequest) => Promise<RecommendResponse>
  defaultModel: string
  /** names the node can run (the OpenAI routes run the default model for others) */
  knownModels: () => string[]
  /** config `openai`: aliases and the default for unknown names */
  openai?: OpenAiModelsConfig
  /** the last served choices, predicted vs realized (GET /serving/choices) */
  recentChoices?: (limit?: number) => ServedChoice[]
}

/** Serving's control-API routes: the OpenAI-compatible ones, `POST /serve` and `POST /recommend`. */
export function registerServingRoutes (api: ControlApi, init: ServingRoutesInit): void {
  registerOpenAiRoutes(api, { serve: init.serve, defaultModel: init.defaultModel, knownModels: init.knownModels, models: init.openai })
  api.route('POST', '/serve', async (r) => {
    const body = await r.json<Record<string, unknown>>()
    if (body == null || typeof body !== 'object' || Array.isArray(body)) throw new ServingError('E_REQ_MALFORMED', 'body must be a JSON object')
    // the infer schema plus `method`, which peers cannot send over /swarmtune/infer
    const { method, ...rest } = body
    if (method !== undefined && typeof method !== 'string') throw new ServingError('E_REQ_INVALID', 'method must be a method id')
    return { json: await init.serve({ ...parseInferRequest(rest), ...(method != null ? { method } : {}) }) }
  })
  // the dashboard's "served choices: realized vs predicted" panel; ?limit=1..100 (default 100)
  api.route('GET', '/serving/choices', (r) => {
    const raw = r.query.get('limit')
    const limit = raw == null ? SERVED_LOG_SIZE : Number(raw)
    if (!Number.isInteger(limit) || limit < 1 || limit > SERVED_LOG_SIZE) throw new ServingError('E_REQ_INVALID', `limit must be an integer in 1..${SERVED_LOG_SIZE}, got "${raw ?? ''}"`)
    return { json: { choices: init.recentChoices?.(limit) ?? [] } }
  })
  api.route('POST', '/recommend', async (r) => {
    const body = await r.json<Record<string, unknown>>()
    if (body == null || typeof body !== 'object' || Array.isArray(body)) throw new ServingError('E_REQ_MALFORMED', 'body must be a JSON object')
    return { json: await init.recommend(parseRecommendRequest(body)) }
  })
}
