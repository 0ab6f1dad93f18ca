import type { Objective } from '../contracts/objective.js'
import type { RecordBody } from '../records/types.js'
import { median } from '../util/stats.js'

/**
 * What "better" means per objective, as one number where higher is better:
 * - throughput: total (prompt + output) tokens per second of the whole workload;
 * - latency: 1000 / median time to first token (requests per second of TTFT);
 * - cost: tokens per second per USD-hour of the machine (same ranking as throughput on one
 *   machine; differs across machines with different prices).
 */
export function objectiveValue (body: Pick<RecordBody, 'result' | 'hardware'>, objective: Objective): number | undefined {
  const r = body.result
  if (!r.ok) return undefined
  switch (objective) {
    case 'throughput': return r.totalTokensPerSecond
    case 'latency': return r.ttftMsP50 > 0 ? 1000 / r.ttftMsP50 : undefined
    case 'cost': return r.totalTokensPerSecond / Math.max(body.hardware.pricePerHour, 1e-3)
  }
}

/**
 * Median objective value per method over records of one class. The class buckets are coarse but
 * the workloads inside one bucket are of similar size, so the raw median is comparable; the
 * median keeps one noisy repeat from flipping a ranking.
 */
export function measuredByMethod (bodies: Array<Pick<RecordBody, 'result' | 'hardware' | 'method'>>, objective: Objective): Map<string, number> {
  const by = new Map<string, number[]>()
  for (const b of bodies) {
    const v = objectiveValue(b, objective)
    if (v == null || !Number.isFinite(v)) continue
    const list = by.get(b.method.id) ?? []
    list.push(v)
    by.set(b.method.id, list)
  }
  return new Map([...by.entries()].map(([m, xs]) => [m, median(xs)]))
}
