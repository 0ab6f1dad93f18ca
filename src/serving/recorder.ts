import type { OwnRecordsWriter } from '../contracts/records.js'
import type { UnsignedBody } from '../records/types.js'
import type { Activity } from '../util/activity.js'

/**
 * The served batches' records, kept off the token-generation path (issue #19 item 4). Signing,
 * the LevelDB write and the gossip publish of a `source: serving` record all run on the event
 * loop that also carries the engine's token callbacks, so they wait until no batch is running
 * (`activity.idle()`) and then go out together in one `ownRecords` call (one store batch). A node
 * that never idles still writes them: after `maxDelayMs`, or once `maxPending` wait.
 */
export interface ServedRecorderInit {
  ownRecords: OwnRecordsWriter
  activity: Pick<Activity, 'idle'>
  /** most bodies held before a write regardless of activity (default 32) */
  maxPending?: number
  /** longest a body waits for an idle moment (default 2000 ms) */
  maxDelayMs?: number
  /** how often a pending write looks for an idle moment (default 25 ms) */
  pollMs?: number
  onWritten?: (n: number) => void
  onError?: (err: unknown, n: number) => void
}

export interface ServedRecorder {
  add: (body: UnsignedBody) => void
  /** write whatever waits now; resolves once it is stored */
  flush: () => Promise<void>
  pending: () => number
}

export function createServedRecorder (init: ServedRecorderInit): ServedRecorder {
  const maxPending = init.maxPending ?? 32
  const maxDelayMs = init.maxDelayMs ?? 2000
  const pollMs = init.pollMs ?? 25
  let bodies: UnsignedBody[] = []
  let oldest = 0
  let timer: NodeJS.Timeout | undefined
  let writing: Promise<void> = Promise.resolve()

  function write (): Promise<void> {
    if (timer != null) { clearTimeout(timer); timer = undefined }
    const batch = bodies
    bodies = []
    if (batch.length === 0) return writing
    // one write at a time, in order, so seqs follow the served order
    writing = writing.then(async () => {
      try {
        await init.ownRecords(batch)
        init.onWritten?.(batch.length)
      } catch (err) {
        init.onError?.(err, batch.length)
      }
    })
    return writing
  }

  function check (): void {
    timer = undefined
    if (bodies.length === 0) return
    if (init.activity.idle() || bodies.length >= maxPending || performance.now() - oldest >= maxDelayMs) { void write(); return }
    timer = setTimeout(check, pollMs)
    timer.unref?.()
  }

  return {
    add (body) {
      if (bodies.length === 0) oldest = performance.now()
      bodies.push(body)
      // not now: the batch that produced it may be followed at once by the next queued one
      if (timer == null) { timer = setTimeout(check, pollMs); timer.unref?.() }
    },
    flush: write,
    pending: () => bodies.length
  }
}
