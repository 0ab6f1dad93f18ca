// Worker thread of the histogram forest: receives the shared binned matrix once, then builds the
// trees it is asked for (by index and seed) and sends their arrays back (transferred, not copied).
import '../../util/polyfill.js'
import { parentPort, workerData } from 'node:worker_threads'
import { buildTree, type TreeData, type TreeParams } from './tree.js'

export interface WorkerInit {
  data: TreeData
  params: TreeParams
}
export interface WorkerJob { tree: number, seed: number }
export type WorkerReply =
  | { tree: number, feature: Int32Array, bin: Uint8Array, right: Int32Array, value: Float32Array }
  | { tree: number, error: string }

const init = workerData as WorkerInit
const port = parentPort
if (port != null) {
  port.on('message', (job: WorkerJob) => {
    try {
      const t = buildTree(init.data, init.params, job.seed)
      const reply: WorkerReply = { tree: job.tree, ...t }
      port.postMessage(reply, [t.feature.buffer, t.bin.buffer, t.right.buffer, t.value.buffer] as ArrayBuffer[])
    } catch (err) {
      port.postMessage({ tree: job.tree, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    }
  })
}
