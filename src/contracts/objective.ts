/**
 * What a task optimizes for. One type for the recommend and infer requests (net), method
 * selection (meta), votes and task classes (vote) and serving; the order of OBJECTIVES is the
 * order votes are computed and listed in.
 */
export type Objective = 'throughput' | 'latency' | 'cost'

export const OBJECTIVES: readonly Objective[] = ['throughput', 'latency', 'cost']
