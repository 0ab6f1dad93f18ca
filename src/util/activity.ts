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

export function createActivity (): Activity {
  let running = 0
  const listeners = new Set<() => void>()
  return {
    begin () {
      running++
      for (const fn of listeners) fn()
      let ended = false
      return () => {
        if (ended) return
        ended = true
        running--
      }
    },
    idle: () => running === 0,
    onBusy (fn) {
      listeners.add(fn)
      return () => { listeners.delete(fn) }
    }
  }
}
