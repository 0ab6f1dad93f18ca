import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { RecordValidationError, type RecordErrorCode } from '../records/errors.js'
import { recordFromVerifiedWire } from '../records/sign.js'
import type { SignedRecord } from '../records/types.js'
import { SwarmtuneError } from '../util/errors.js'
import { packageRoot } from '../util/paths.js'

/*
 * Record verification on every core (issue #19). Callers hand in one wire at a time (a gossip
 * validator) or many (a sync page); the pool queues them and, at the end of the event loop's turn,
 * sends each idle worker a batch of what is waiting, so batches grow with load and a lone record
 * still goes out within the turn. Workers answer ids and Merkle leaves, so the coordinating thread
 * only copies each record out of the batch buffer and parses its body. Each
 * caller gets its own record's verdict: a record rejected in a batch rejects only that record.
 * A worker that dies fails its batch as "retry" (E_VERIFY_RETRY, never an accept) and is
 * replaced; nothing is ever accepted without a worker's verdict on exactly those bytes.
 */

/**
 * main → worker: wires concatenated in one transferred buffer; `ends[i]` ends wire i; `bodyOnly[i]`
 * 1 = every check but the signature (sync 2.0.0 runs, whose signature is the log head's)
 */
export interface VerifyRequest { seq: number, buf: ArrayBuffer, ends: number[], nows: number[], bodyOnly?: number[] }
/** a refused wire: its index in the batch and what verifyWire threw */
export interface WireFailure { i: number, code: string, message: string, invalid: boolean }
/** bytes of one Merkle leaf in VerifyReply.leaves */
export const LEAF_BYTES = 32
/**
 * worker → main, in wire order: `ids[i]` the record id of wire i ('' when refused: its reason is in
 * `fails`), `leaves` wire i's Merkle leaf at i × 32 (hashed by the worker from the bytes it
 * checked, so the coordinator hashes nothing); the request buffer comes back
 */
export interface VerifyReply { seq: number, buf: ArrayBuffer, ids: string[], leaves: ArrayBuffer, fails: WireFailure[] }

export const VerifyErrorCode = {
  /** the worker died with the batch in flight, or the pool closed: not the sender's fault, try again */
  RETRY: 'E_VERIFY_RETRY',
  /** more wires waiting than maxQueued: shed, not the sender's fault */
  BUSY: 'E_VERIFY_BUSY'
} as const

export interface VerifyPoolOptions {
  /** worker threads (≥ 1) */
  size: number
  /** most wires in one batch (default 64: ~10 ms of verification, small enough to keep latency) */
  maxBatch?: number
  /** most wires waiting for a worker before verify() refuses with E_VERIFY_BUSY (default 16384) */
  maxQueued?: number
  /** the worker script (tests substitute one that crashes) */
  workerPath?: string
  /** called on every worker crash */
  onCrash?: (err: unknown) => void
}

export interface VerifyPoolStats { workers: number, batches: number, verified: number, crashes: number, restarts: number, retried: number, queued: number }

export interface VerifyPool {
  /** verifyWire() on a worker: resolves with the record or throws what verifyWire throws */
  verify: (wire: Uint8Array, now?: number) => Promise<SignedRecord>
  /** decodeWireUnverified() on a worker: every check but the signature (sync 2.0.0 run records only) */
  check: (wire: Uint8Array, now?: number) => Promise<SignedRecord>
  readonly size: number
  stats: () => VerifyPoolStats
  close: () => Promise<void>
}

/** Pure: `net.verifyWorkers` → worker count. 'auto' is one per core (the main thread only coordinates). */
export function resolveVerifyWorkers (setting: number | 'auto' | undefined, cores = availableParallelism()): number {
  if (setting == null || setting === 'auto') return Math.max(1, cores)
  return Math.max(0, Math.floor(setting))
}

/** The compiled worker: under vitest this module runs from src/ (TypeScript), so use dist/. */
export function verifyWorkerPath (): string {
  const here = fileURLToPath(new URL('./verify-worker.js', import.meta.url))
  return existsSync(here) ? here : join(packageRoot(), 'dist', 'src', 'net', 'verify-worker.js')
}

interface Job { wire: Uint8Array, now: number, bodyOnly: boolean, resolve: (r: SignedRecord) => void, reject: (err: unknown) => void }
interface Slot { worker: Worker, batch?: { seq: number, jobs: Job[] }, dead: boolean }

function retryError (why: string): SwarmtuneError {
  return new SwarmtuneError(VerifyErrorCode.RETRY, why)
}

/** One transferable buffer for a batch: the wires back to back, `ends[i]` where wire i ends. */
function packRequest (seq: number, jobs: Job[]): VerifyRequest {
  let total = 0
  for (const j of jobs) total += j.wire.length
  const all = new Uint8Array(total)
  const ends: number[] = []
  let at = 0
  for (const j of jobs) { all.set(j.wire, at); at += j.wire.length; ends.push(at) }
  const req: VerifyRequest = { seq, buf: all.buffer, ends, nows: jobs.map(j => j.now) }
  if (jobs.some(j => j.bodyOnly)) req.bodyOnly = jobs.map(j => j.bodyOnly ? 1 : 0)
  return req
}

/**
 * Each job gets its own verdict; the record is rebuilt from the bytes the worker checked (one copy
 * per record, which becomes the record's envelope), with the id and leaf the worker computed.
 */
function settleJobs (jobs: Job[], reply: VerifyReply): void {
  const all = new Uint8Array(reply.buf)
  const leaves = new Uint8Array(reply.leaves)
  const failed = new Map<number, WireFailure>()
  for (const f of reply.fails) failed.set(f.i, f)
  let start = 0
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]
    const end = start + job.wire.length
    const id = reply.ids[i]
    const f = failed.get(i)
    try {
      if (f != null || typeof id !== 'string' || id === '') {
        const code = f?.code ?? 'E_INTERNAL'
        const message = f?.message ?? 'no verdict'
        job.reject(f?.invalid === true ? new RecordValidationError(code as RecordErrorCode, message) : new SwarmtuneError(code, message))
      } else {
        job.resolve(recordFromVerifiedWire(all.slice(start, end), id, leaves.subarray(i * LEAF_BYTES, (i + 1) * LEAF_BYTES)))
      }
    } catch (err) {
      job.reject(retryError(`rebuilding a verified record failed: ${(err as Error)?.message}`))
    }
    start = end
  }
}

export function createVerifyPool (opts: VerifyPoolOptions): VerifyPool {
  const size = Math.max(1, Math.floor(opts.size))
  const maxBatch = opts.maxBatch ?? 64
  const maxQueued = opts.maxQueued ?? 16_384
  const path = opts.workerPath ?? verifyWorkerPath()
  if (!existsSync(path)) throw new SwarmtuneError('E_VERIFY_WORKER', `verification worker not found at ${path} (run npm run build)`)
  const queue: Job[] = []
  const slots: Slot[] = []
  const st = { batches: 0, verified: 0, crashes: 0, restarts: 0, retried: 0 }
  let seq = 0
  let closed = false
  let pumping = false
  let crashStreak = 0

  const spawn = (): Slot => {
    const slot: Slot = { worker: new Worker(path), dead: false }
    slot.worker.on('message', (reply: VerifyReply) => { onReply(slot, reply) })
    slot.worker.on('error', err => { onDeath(slot, err) })
    slot.worker.on('exit', code => { onDeath(slot, new Error(`verification worker exited with code ${code}`)) })
    return slot
  }

  const onReply = (slot: Slot, reply: VerifyReply): void => {
    const batch = slot.batch
    if (batch == null || batch.seq !== reply.seq || reply.ids?.length !== batch.jobs.length || reply.leaves?.byteLength !== batch.jobs.length * LEAF_BYTES) return
    slot.batch = undefined
    crashStreak = 0
    st.verified += batch.jobs.length
    settleJobs(batch.jobs, reply)
    pump()
  }

  const onDeath = (slot: Slot, err: unknown): void => {
    if (slot.dead) return
    slot.dead = true
    const batch = slot.batch
    slot.batch = undefined
    if (batch != null) {
      st.retried += batch.jobs.length
      for (const job of batch.jobs) job.reject(retryError(`verification worker died: ${(err as Error)?.message}`))
    }
    void slot.worker.terminate()
    if (closed) return
    st.crashes++
    opts.onCrash?.(err)
    // replace it; a worker that keeps dying (a broken build) is retried with a growing pause
    const delay = Math.min(5000, crashStreak === 0 ? 0 : 50 * 2 ** Math.min(crashStreak, 7))
    crashStreak++
    setTimeout(() => {
      if (closed) return
      const i = slots.indexOf(slot)
      if (i < 0) return
      slots[i] = spawn()
      st.restarts++
      pump()
    }, delay).unref?.()
  }

  const dispatch = (slot: Slot, jobs: Job[]): void => {
    const req = packRequest(++seq, jobs)
    slot.batch = { seq: req.seq, jobs }
    st.batches++
    try {
      slot.worker.postMessage(req, [req.buf])
    } catch (err) {
      onDeath(slot, err)
    }
  }

  // hand what is waiting to the idle workers, split evenly so one batch does not hold it all
  function pump (): void {
    if (pumping) return
    pumping = true
    try {
      let idle = slots.filter(s => !s.dead && s.batch == null)
      while (queue.length > 0 && idle.length > 0) {
        const n = Math.min(maxBatch, Math.ceil(queue.length / idle.length))
        dispatch(idle[0], queue.splice(0, n))
        idle = idle.slice(1)
      }
    } finally {
      pumping = false
    }
  }

  for (let i = 0; i < size; i++) slots.push(spawn())

  // one promise per record, no async wrapper around it (a sync page puts thousands in flight)
  const enqueue = (wire: Uint8Array, now: number, bodyOnly: boolean): Promise<SignedRecord> => {
    if (closed) return Promise.reject(retryError('verification pool closed'))
    if (queue.length >= maxQueued) return Promise.reject(new SwarmtuneError(VerifyErrorCode.BUSY, `${queue.length} records already wait for verification`))
    return new Promise<SignedRecord>((resolve, reject) => {
      queue.push({ wire, now, bodyOnly, resolve, reject })
      // wires that arrive in the same turn of the event loop go out together: every frame of the
      // network chunks read in this turn (a sync page arrives as a few chunks of many records),
      // not one message per record; a lone record still leaves within the turn
      if (queue.length === 1) setImmediate(pump)
    })
  }

  return {
    size,
    verify: (wire, now = Date.now()) => enqueue(wire, now, false),
    check: (wire, now = Date.now()) => enqueue(wire, now, true),
    stats: () => ({ workers: slots.filter(s => !s.dead).length, ...st, queued: queue.length }),
    async close (): Promise<void> {
      if (closed) return
      closed = true
      for (const job of queue.splice(0)) job.reject(retryError('verification pool closed'))
      await Promise.all(slots.map(async s => {
        const b = s.batch
        s.batch = undefined
        for (const job of b?.jobs ?? []) job.reject(retryError('verification pool closed'))
        s.dead = true
        await s.worker.terminate()
      }))
    }
  }
}
