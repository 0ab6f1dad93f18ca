import '../util/polyfill.js'
import { parentPort } from 'node:worker_threads'
import { RecordValidationError } from '../records/errors.js'
import { decodeWireUnverified, verifyWire } from '../records/sign.js'
import { errorCode } from '../util/errors.js'
import type { VerifyReply, VerifyRequest, WireVerdict } from './verify-pool.js'

/*
 * A verification worker of the pool (src/net/verify-pool.ts): runs verifyWire(), the one entry
 * point for untrusted records (or, for sync 2.0.0 run records, every check but the signature), on each wire of a batch and answers one verdict per wire, in order.
 * The batch buffer goes back with the reply, so the coordinator rebuilds each record from exactly
 * the bytes that were verified here.
 */
async function verifyBatch (req: VerifyRequest): Promise<VerifyReply> {
  const all = new Uint8Array(req.buf)
  const verdicts: WireVerdict[] = []
  let start = 0
  for (let i = 0; i < req.ends.length; i++) {
    const wire = all.subarray(start, req.ends[i])
    start = req.ends[i]
    try {
      const r = req.bodyOnly?.[i] === 1 ? decodeWireUnverified(wire, req.nows[i]) : await verifyWire(wire, req.nows[i])
      verdicts.push({ ok: true, id: r.id })
    } catch (err) {
      verdicts.push({ ok: false, code: errorCode(err), message: (err as Error)?.message ?? String(err), invalid: err instanceof RecordValidationError })
    }
  }
  return { seq: req.seq, buf: req.buf, verdicts }
}

parentPort?.on('message', (req: VerifyRequest) => {
  void verifyBatch(req).then(reply => { parentPort?.postMessage(reply, [reply.buf]) })
})
