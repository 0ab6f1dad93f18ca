import '../util/polyfill.js'
import { parentPort } from 'node:worker_threads'
import { errorCode, errorMessage } from '../util/errors.js'
import { buildDataset, type HistoryBody } from './dataset.js'
import { evaluate, FOREST_ROW } from './eval.js'
import { evalSplitOf } from './learning-curve.js'
import { getBackend } from './ml-forest.js'
import type { EvalReply, EvalRequest } from './learning-curve.js'

/**
 * The daemon's own evaluation (learning-curve.ts) off the main thread: grouped cross-validation
 * of the selectors on the node's history trains a forest per fold and blocks for seconds. Input:
 * { bodies, nTrees, seed }; output: { ok: true, result } (the eval table) or { ok: false, code, message }.
 */
async function run (req: EvalRequest): Promise<EvalReply> {
  const ds = buildDataset(req.bodies as HistoryBody[])
  const split = evalSplitOf(ds)
  const histogram = await getBackend('histogram')
  const r = await evaluate(ds, { split, nTrees: req.nTrees, seed: req.seed, mlRandomForest: false, backends: { [FOREST_ROW]: histogram } })
  return { ok: true, result: { split: r.split, folds: r.folds, tasks: r.tasks, rows: r.rows, grouping: r.grouping } }
}

parentPort?.once('message', (req: EvalRequest) => {
  run(req).then(reply => { parentPort?.postMessage(reply) }, err => {
    parentPort?.postMessage({ ok: false, code: errorCode(err), message: errorMessage(err) } satisfies EvalReply)
  })
})
