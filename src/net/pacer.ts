/**
 * Cooperative time slicing for CPU-bound work on untrusted input (issue #7, flood).
 *
 * Record verification is synchronous crypto behind an async API: a burst of a thousand gossip
 * messages, or a sync page, resolves as one long chain of microtasks, and the event loop reaches
 * nothing else (a recommend request, a timer) until the whole burst is done — seconds on a
 * loaded machine. The pacer runs queued jobs one at a time, in order, and hands the loop back
 * (setImmediate) once a slice of `sliceMs` is used, so other work waits at most about one slice
 * per turn. Jobs are never dropped here; what may be queued at all is the guard's business.
 */
export interface Pacer {
  /** run `fn` in turn; resolves or rejects with its result */
  run: <T>(fn: () => T | Promise<T>) => Promise<T>
  /** jobs waiting (not counting the one running) */
  readonly queued: number
  /** times the pacer handed the loop back */
  readonly yields: number
}

export interface PacerOptions {
  sliceMs?: number
  now?: () => number
}

export const DEFAULT_SLICE_MS = 5

export function createPacer (opts: PacerOptions = {}): Pacer {
  const sliceMs = opts.sliceMs ?? DEFAULT_SLICE_MS
  const now = opts.now ?? (() => performance.now())
  const queue: Array<() => Promise<void>> = []
  let draining = false
  let yields = 0

  const drain = async (): Promise<void> => {
    let sliceStart = now()
    while (queue.length > 0) {
      if (now() - sliceStart >= sliceMs) {
        yields++
        await new Promise<void>(resolve => { setImmediate(resolve) })
        sliceStart = now()
      }
      await queue.shift()!()
    }
    draining = false
  }

  return {
    async run<T> (fn: () => T | Promise<T>): Promise<T> {
      return await new Promise<T>((resolve, reject) => {
        queue.push(async () => {
          try { resolve(await fn()) } catch (err) { reject(err) }
        })
        if (!draining) {
          draining = true
          // start on a later turn: the caller's own synchronous work comes first
          setImmediate(() => { void drain() })
        }
      })
    },
    get queued () { return queue.length },
    get yields () { return yields }
  }
}
