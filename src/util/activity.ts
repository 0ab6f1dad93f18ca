/**
 * The idle hook. Serving code wraps each inference task in `begin()` … `end()`; the sweep only
 * starts a cell when `idle()` and aborts the running one when a task begins. A foreground
 * `swarmtune bench` counts as a task too.
 */
export interface Activity {
  /** mark a task as running; call the returned function when it ends (idempotent) */
  begin: () => () => void
  /** true when no task is running */
  idle: () => boolean
  /** listeners run when a task begins (the sweep aborts its cell) */
  onBusy: (fn: () => void) => () => void
}

/**
 * `mark`: called when the first task begins, its result when the last one ends (issue #17 item
 * 6: the host-wide busy marker, host-lock.ts, so other daemons of the machine yield too).
 */
export function createActivity (opts: { mark?: () => () => void } = {}): Activity {
  let running = 0
  let unmark: (() => void) | undefined
  const listeners = new Set<() => void>()
  return {
    begin () {
      if (running++ === 0) unmark = opts.mark?.()
      for (const fn of listeners) fn()
      let ended = false
      return () => {
        if (ended) return
        ended = true
        if (--running === 0) { unmark?.(); unmark = undefined }
      }
    },
    idle: () => running === 0,
    onBusy (fn) {
      listeners.add(fn)
      return () => { listeners.delete(fn) }
    }
  }
}
