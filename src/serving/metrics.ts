import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** What serving exports on /metrics (registered by the node's metrics catalogue, src/node/metrics.ts). */
export interface ServingMetrics {
  batches: Counter<'outcome'>
  promptTokens: Counter
  outputTokens: Counter
  ttftSeconds: Histogram
  outputTokensPerSecond: Histogram
  methodChosen: Counter<'method' | 'source'>
  queueDepth: Gauge
  predictionAbsLogError: Histogram
}

export function createServingMetrics (register: Registry, queueDepth: () => number = () => 0): ServingMetrics {
  const registers = [register]
  return {
    batches: new Counter({ name: 'swarmtune_serving_batches_total', help: 'Served batches by outcome (ok, error, overloaded)', labelNames: ['outcome'], registers }),
    promptTokens: new Counter({ name: 'swarmtune_serving_prompt_tokens_total', help: 'Prompt tokens of served requests', registers }),
    outputTokens: new Counter({ name: 'swarmtune_serving_output_tokens_total', help: 'Tokens generated for served requests', registers }),
    ttftSeconds: new Histogram({ name: 'swarmtune_serving_time_to_first_token_seconds', help: 'Time to first token of served requests', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers }),
    outputTokensPerSecond: new Histogram({ name: 'swarmtune_serving_output_tokens_per_second', help: 'Output tokens per second of served batches', buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000], registers }),
    methodChosen: new Counter({ name: 'swarmtune_serving_method_chosen_total', help: 'Methods chosen for served batches, by method and why (meta, safe-default, committee, cold-start, explore, forced)', labelNames: ['method', 'source'], registers }),
    // issue #17: realized vs predicted for served tasks (only tasks the meta-model predicted)
    predictionAbsLogError: new Histogram({ name: 'swarmtune_serving_prediction_abs_log_error', help: 'Served tasks: |ln(predicted / realized)| of throughput (wall time for the same tokens) of the chosen method', buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3], registers }),
    queueDepth: new Gauge({ name: 'swarmtune_serving_queue_depth', help: 'Batches waiting or running', registers, collect () { this.set(queueDepth()) } })
  }
}
