import '../util/polyfill.js'
import { parentPort } from 'node:worker_threads'
import { RecordValidationError } from '../records/errors.js'
import { proveWire } from '../records/sign.js'
import { errorCode } from '../util/errors.js'
import { LEAF_BYTES, type VerifyReply, type VerifyRequest, type WireFailure } from './verify-pool.js'

/*
 * A verification worker of the pool (src/net/verify-pool.ts): runs verifyWire()'s checks (the one
 * entry point for untrusted records; or, for sync 2.0.0 run records, every check but the
 * signature) on each wire of a batch and answers, in order, each wire's id (empty when refused,
 * with the refusal in `fails`) and its Merkle leaf, hashed here from the bytes checked here.
 * The batch buffer goes back with the reply, so the coordinator rebuilds each record from exactly
 * the bytes that were verified here.
 */
async function verifyBatch (req: VerifyRequest): Promise<VerifyReply> {
  const all = new Uint8Array(req.buf)
  const n = req.ends.length
  const ids: string[] = new Array<string>(n)
  const leaves = new Uint8Array(n * LEAF_BYTES)
  const fails: WireFailure[] = []
  let start = 0
  for (let i = 0; i < n; i++) {
    const wire = all.subarray(start, req.ends[i])
    start = req.ends[i]
    try {
      const p = await proveWire(wire, req.nows[i], req.bodyOnly?.[i] !== 1)
      ids[i] = p.id
      leaves.set(p.leaf, i * LEAF_BYTES)
    } catch (err) {
      ids[i] = ''
      fails.push({ i, code: errorCode(err), message: (err as Error)?.message ?? String(err), invalid: err instanceof RecordValidationError })
    }
  }
  return { seq: req.seq, buf: req.buf, ids, leaves: leaves.buffer, fails }
}

parentPort?.on('message', (req: VerifyRequest) => {
  void verifyBatch(req).then(reply => { parentPort?.postMessage(reply, [reply.buf, reply.leaves]) })
})
