/**
 * The regression-forest interface the meta-model trains through. Two backends implement it:
 * `ml-random-forest` (issue #4, the reference) and a histogram forest (issue #5, for scale).
 */
export interface ForestOptions {
  nTrees: number
  /** fraction of features tried at each split (0, 1] */
  maxFeatures?: number
  maxDepth?: number
  minSamplesLeaf?: number
  seed?: number
  /**
   * rows drawn (with replacement) for each tree; default: as many as the training set. Lets the
   * rows²-cost ml-random-forest backend bound its per-tree cost; backends may ignore it.
   */
  sampleSize?: number
  /**
   * a group id per training row (pairwise-prior.ts: the row's task); a backend that holds rows out
   * internally (boosting.ts early stopping) keeps a group on one side. Forests ignore it.
   */
  groups?: readonly number[]
}

export interface ForestPrediction {
  /** mean over trees */
  mean: number[]
  /** standard deviation over trees: the model's uncertainty for exploration */
  std: number[]
}

export interface RegressionForest {
  readonly backend: string
  predict(X: number[][]): ForestPrediction
  /**
   * Optional: `predict` of the rows `task.concat(tail)`, one per tail, with the same result; a
   * backend that can skip building the rows (the histogram forest) implements it. A tail array
   * must not change after it is passed (it may be remembered by identity).
   */
  predictParts?(task: readonly number[], tails: ReadonlyArray<readonly number[]>): ForestPrediction
  /** JSON-serializable snapshot; `LearnerBackend.load` restores it */
  toJSON(): unknown
}

export interface LearnerBackend {
  readonly name: string
  train(X: number[][], y: number[], opts: ForestOptions): Promise<RegressionForest>
  load(snapshot: unknown): RegressionForest
}
