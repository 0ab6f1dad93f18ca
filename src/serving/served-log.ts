import { absLogError } from '../meta/served-error.js'

/**
 * The last served tasks whose method the node chose (not forced), with what was predicted and
 * what was realized (issue #20, the dashboard's "served choices" panel; issue #17's error is the
 * mean of `absLogError` here). Throughput is total tokens (prompt + output) over the batch's wall
 * time; the prediction is the chosen method's predicted wall time for the same tokens. Pure:
 * a bounded ring, newest last.
 */
export const SERVED_LOG_SIZE = 100

export interface ServedChoice {
  /** ms since the epoch, when the batch finished */
  at: number
  model: string
  method: string
  /** why it was chosen: meta, committee, safe-default, explore, ... */
  source: string
  taskClass: string
  predictedTokensPerSecond: number | null
  realizedTokensPerSecond: number
  predictedWallMs: number | null
  realizedWallMs: number
  /** |ln predicted/realized|, null without a prediction */
  absLogError: number | null
}

export interface ServedChoiceInput {
  at: number
  model: string
  method: string
  source: string
  taskClass: string
  predictedWallMs: number | null
  realizedWallMs: number
  tokens: number
}

export interface ServedLog {
  add: (c: ServedChoiceInput) => ServedChoice
  /** the newest `limit` (all when absent), oldest first */
  recent: (limit?: number) => ServedChoice[]
}

const round = (x: number): number => Math.round(x * 1000) / 1000

export function servedChoice (c: ServedChoiceInput): ServedChoice {
  const tps = (wallMs: number): number => round(c.tokens / (Math.max(wallMs, 1e-3) / 1000))
  const predicted = c.predictedWallMs != null && c.predictedWallMs > 0 && Number.isFinite(c.predictedWallMs) ? c.predictedWallMs : null
  const err = absLogError(predicted, c.realizedWallMs)
  return {
    at: c.at,
    model: c.model,
    method: c.method,
    source: c.source,
    taskClass: c.taskClass,
    predictedTokensPerSecond: predicted != null ? tps(predicted) : null,
    realizedTokensPerSecond: tps(c.realizedWallMs),
    predictedWallMs: predicted != null ? round(predicted) : null,
    realizedWallMs: round(c.realizedWallMs),
    absLogError: err != null ? round(err) : null
  }
}

export function createServedLog (size = SERVED_LOG_SIZE): ServedLog {
  const items: ServedChoice[] = []
  return {
    add (c) {
      const s = servedChoice(c)
      items.push(s)
      if (items.length > size) items.shift()
      return s
    },
    recent: limit => limit == null ? [...items] : items.slice(Math.max(0, items.length - limit))
  }
}
