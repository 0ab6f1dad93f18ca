/**
 * How far the meta-model's predictions were off for the tasks this node served (issue #17):
 * the mean absolute natural-log error |ln(predicted) − ln(realized)| of throughput over the last
 * `window` served tasks. Throughput is tokens / wall time for the same tokens, so the error of
 * predicted wall time is the error of predicted throughput. Pure.
 */
export const SERVED_ERROR_WINDOW = 100

/** |ln(predicted/realized)|, or null when either side is not a positive finite number. */
export function absLogError (predicted: number | null | undefined, realized: number): number | null {
  if (predicted == null || !(predicted > 0) || !Number.isFinite(predicted) || !(realized > 0) || !Number.isFinite(realized)) return null
  return Math.abs(Math.log(predicted / realized))
}

export interface ServedErrorTracker {
  /** add one served task; returns its error (null when it could not be computed and was skipped) */
  observe: (predicted: number | null | undefined, realized: number) => number | null
  /** mean over the window; null before any */
  mean: () => number | null
  count: () => number
  /** the `meta` status fields */
  status: () => { servedPredictionError: number | null, servedPredictions: number }
}

export function createServedErrorTracker (window = SERVED_ERROR_WINDOW): ServedErrorTracker {
  const errors: number[] = []
  let sum = 0
  return {
    observe (predicted, realized) {
      const e = absLogError(predicted, realized)
      if (e == null) return null
      errors.push(e)
      sum += e
      if (errors.length > window) sum -= errors.shift() ?? 0
      return e
    },
    // recomputed from the window (not the running sum) so float drift cannot accumulate
    mean: () => errors.length === 0 ? null : errors.reduce((s, x) => s + x, 0) / errors.length,
    count: () => errors.length,
    status () { return { servedPredictionError: this.mean(), servedPredictions: this.count() } }
  }
}
