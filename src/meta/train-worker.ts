import '../util/polyfill.js'
import { parentPort } from 'node:worker_threads'
import { errorCode, errorMessage } from '../util/errors.js'
import { toJSON, train, type TrainOptions } from './selector.js'
import type { HistoryBody } from './dataset.js'

/**
 * Retraining off the main thread: ml-random-forest blocks for seconds to minutes, and the node
 * must keep answering gossip, sync and the API meanwhile. Input: { bodies, opts } (backend by
 * name); output: { ok: true, snapshot } or { ok: false, code, message }.
 */
export interface TrainRequest { bodies: HistoryBody[], opts: Omit<TrainOptions, 'backend'> & { backend?: string } }
export type TrainReply = { ok: true, snapshot: unknown } | { ok: false, code: string, message: string }

parentPort?.once('message', (req: TrainRequest) => {
  train(req.bodies, req.opts).then(model => {
    parentPort?.postMessage({ ok: true, snapshot: toJSON(model) } satisfies TrainReply)
  }, err => {
    parentPort?.postMessage({ ok: false, code: errorCode(err), message: errorMessage(err) } satisfies TrainReply)
  })
})
