import type { HardwareFingerprint, MethodDescriptor, ModelDescriptor, RecordBody, ResultMetrics, SignedRecord, WorkloadDescriptor } from '../records/types.js'
import { stableId } from '../records/stable-id.js'
import { SwarmtuneError } from '../util/errors.js'
import { createRng } from '../util/random.js'
import { median } from '../util/stats.js'
import { featureVector, type FeatureTask } from './features.js'
import { robustCellValue } from './aggregate.js'
import { normalizeHistoryBody } from './legacy-records.js'

/**
 * History → training cells (pure). A cell is one (hardware.id, model.id, workload.name, method.id);
 * repeated records of a cell are aggregated by their MEDIAN (robust to one noisy run or a
 * lying peer). Only ok records are aggregated; a cell whose records all failed is kept with
 * `failed: true` ("the method fails here"), so evaluation can charge a selector for picking it.
 */
export const DEFAULT_BASELINE = 'baseline'

/** The part of a record body the meta-model reads. */
export interface HistoryBody {
  /** `measured`: in memory only, this node's capability probe on its own machine's records (meta/service.ts) */
  hardware: HardwareFingerprint & { measured?: { memBwGBs: number, computeTflops: number } }
  model: ModelDescriptor
  workload: WorkloadDescriptor
  method: MethodDescriptor
  result: ResultMetrics
  source?: string
}

export interface TaskInfo extends FeatureTask {
  hardware: HardwareFingerprint
  model: ModelDescriptor
  workload: WorkloadDescriptor
}

export interface Cell {
  key: string
  taskKey: string
  hardwareId: string
  modelId: string
  workload: string
  method: string
  knobs: Record<string, number>
  records: number
  okRecords: number
  failed: boolean
  /** medians over ok records (NaN when failed) */
  throughput: number
  wallMs: number
  ttftMs: number
}

export interface Task {
  key: string
  hardwareId: string
  modelId: string
  workload: string
  family: string
  info: TaskInfo
  /** method id → cell */
  cells: Map<string, Cell>
  /** the baseline method's cell when it was measured and ok */
  baseline?: Cell
  /**
   * The cell speedups are measured against in evaluation (docs/META.md §6): the baseline
   * (`default-setting`) when it ran ok, else the `median-setting`. Undefined when no cell is ok.
   */
  reference?: Cell
  referenceRule?: ReferenceRule
}

/** How a task's reference setting was chosen (docs/META.md §6). */
export type ReferenceRule = 'default-setting' | 'median-setting'

export interface Dataset {
  cells: Cell[]
  tasks: Task[]
  /** every method id seen, sorted */
  methods: string[]
  /** method id → knob vector (first seen; a cell's own knobs are in `Cell.knobs`) */
  methodKnobs: Record<string, Record<string, number>>
  baselineMethod: string
}

export interface TrainingRows {
  X: number[][]
  /** log speedup over the baseline: NaN where the task has no ok baseline */
  ySpeedup: number[]
  yWall: number[]
  yTtft: number[]
  cells: Cell[]
}

/** Accepts SignedRecords, record bodies, or `history --json` entries ({ body }); older shapes are normalized. */
export function toBodies (records: ReadonlyArray<SignedRecord | HistoryBody | { body: HistoryBody }>): HistoryBody[] {
  return records.map((r, i) => {
    const b = (r as { body?: HistoryBody }).body ?? (r as HistoryBody)
    if (b == null || typeof b !== 'object' || b.hardware == null || b.model == null || b.workload == null || b.method == null || b.result == null) {
      throw new SwarmtuneError('E_BAD_HISTORY', `history entry ${i} is not a record body`)
    }
    // records of older releases, read as the current code writes them (legacy-records.ts)
    return normalizeHistoryBody(b)
  })
}

/**
 * The model a task is about, independent of the file variant: weight quantization is a method
 * (knob `weightBits`), so a Q8_0 run of a model belongs to the same task as its F16 baseline.
 * Records made before the bench runner always described the default file carry the Q8_0
 * descriptor for weights-q8 methods; keying by the architecture keeps them comparable.
 */
export function logicalModelId (model: Pick<ModelDescriptor, 'name' | 'architecture' | 'params' | 'layers' | 'embd' | 'heads' | 'kvHeads' | 'ff' | 'vocab' | 'ctx'>): string {
  const { name, architecture, params, layers, embd, heads, kvHeads, ff, vocab, ctx } = model
  const fields = { name, architecture, params, layers, embd, heads, kvHeads, ff, vocab, ctx }
  // a hash per call was a tenth of a new-task recommend (issue #19 item 3): remember the few
  // models a node sees, keyed by the same fields; anything but strings, finite numbers and
  // undefined goes to stableId uncached (which refuses what it cannot encode)
  let key = ''
  for (const v of Object.values(fields)) {
    if (typeof v === 'string') key += 's' + JSON.stringify(v)
    else if (typeof v === 'number' && Number.isFinite(v)) key += 'n' + String(v) + ','
    else if (v === undefined) key += 'u,'
    else return stableId(fields)
  }
  let id = logicalIds.get(key)
  if (id == null) {
    if (logicalIds.size >= LOGICAL_IDS_MAX) logicalIds.clear()
    id = stableId(fields)
    logicalIds.set(key, id)
  }
  return id
}
const LOGICAL_IDS_MAX = 4096
const logicalIds = new Map<string, string>()

export function taskKeyOf (hardwareId: string, modelId: string, workload: string): string {
  return `${hardwareId}|${modelId}|${workload}`
}

/**
 * `weightOf` (issue #7, src/trust): per-author trust. When given, a cell's value is the
 * trust-weighted median of its authors' medians (one voice per author, however many records),
 * authors with weight 0 (equivocators, distrusted) are left out, and a cell only they claimed
 * is dropped. Without it, the plain median over records (unchanged behaviour).
 */
export function buildDataset (records: ReadonlyArray<SignedRecord | HistoryBody | { body: HistoryBody }>, opts: { baselineMethod?: string, weightOf?: (author: string) => number } = {}): Dataset {
  const baselineMethod = opts.baselineMethod ?? DEFAULT_BASELINE
  const bodies = toBodies(records)
  const groups = new Map<string, HistoryBody[]>()
  for (const b of bodies) {
    const key = `${taskKeyOf(b.hardware.id, logicalModelId(b.model), b.workload.name)}|${b.method.id}`
    let g = groups.get(key)
    if (g == null) groups.set(key, g = [])
    g.push(b)
  }
  const tasks = new Map<string, Task>()
  const cells: Cell[] = []
  const methodKnobs: Record<string, Record<string, number>> = {}
  const weightOf = opts.weightOf
  const authorOf = (b: HistoryBody): string => (b as { author?: string }).author ?? ''
  for (const [key, all] of [...groups.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const group = weightOf == null ? all : all.filter(b => weightOf(authorOf(b)) > 0)
    if (group.length === 0) continue
    const first = group[0]
    const ok = group.filter(b => b.result.ok)
    const robust = (metric: (b: HistoryBody) => number): number =>
      weightOf == null ? median(ok.map(metric), NaN) : robustCellValue(ok.map(b => ({ author: authorOf(b), value: metric(b) })), weightOf).value
    const tKey = taskKeyOf(first.hardware.id, logicalModelId(first.model), first.workload.name)
    const cell: Cell = {
      key,
      taskKey: tKey,
      hardwareId: first.hardware.id,
      modelId: logicalModelId(first.model),
      workload: first.workload.name,
      method: first.method.id,
      knobs: first.method.knobs,
      records: group.length,
      okRecords: ok.length,
      failed: ok.length === 0,
      throughput: robust(b => b.result.totalTokensPerSecond),
      wallMs: robust(b => b.result.wallMs),
      ttftMs: robust(b => b.result.ttftMsP50)
    }
    cells.push(cell)
    methodKnobs[cell.method] ??= cell.knobs
    let task = tasks.get(tKey)
    if (task == null) {
      task = {
        key: tKey,
        hardwareId: cell.hardwareId,
        modelId: cell.modelId,
        workload: cell.workload,
        family: first.workload.family,
        info: { hardware: first.hardware, model: first.model, workload: first.workload },
        cells: new Map()
      }
      tasks.set(tKey, task)
    }
    task.cells.set(cell.method, cell)
    // the task describes its model as the baseline ran it (the default file variant)
    if (cell.method === baselineMethod) task.info = { hardware: first.hardware, model: first.model, workload: first.workload }
    if (cell.method === baselineMethod && !cell.failed && cell.throughput > 0) task.baseline = cell
  }
  for (const t of tasks.values()) assignReference(t)
  return {
    cells,
    tasks: [...tasks.values()],
    methods: Object.keys(methodKnobs).sort(),
    methodKnobs,
    baselineMethod
  }
}

/**
 * A task's reference: the default setting (the baseline method) when it ran ok; otherwise the
 * ok cell with the median throughput (the lower median, ties by method id). Imported tables
 * rarely contain a method called `baseline`; the median setting keeps every task with an ok
 * measurement evaluable. Top-1 and regret do not depend on the reference (they compare
 * against the task's best); only speedup and oracle share do.
 */
export function assignReference (task: Task): void {
  if (task.baseline != null) {
    task.reference = task.baseline
    task.referenceRule = 'default-setting'
    return
  }
  const ok = [...task.cells.values()].filter(c => !c.failed && c.throughput > 0)
    .sort((a, b) => a.throughput - b.throughput || (a.method < b.method ? -1 : a.method > b.method ? 1 : 0))
  if (ok.length === 0) return
  task.reference = ok[Math.floor((ok.length - 1) / 2)]
  task.referenceRule = 'median-setting'
}

/** Throughput of a method relative to the task's reference (0 when it failed, NaN when absent). */
export function relativePerfOf (task: Task, method: string): number {
  const c = task.cells.get(method)
  if (c == null || task.reference == null) return NaN
  if (c.failed) return 0
  return c.throughput / task.reference.throughput
}

/** Speedup of a cell over its task's baseline (0 when the method failed, NaN without baseline). */
export function speedupOf (task: Task, method: string): number {
  const c = task.cells.get(method)
  if (c == null || task.baseline == null) return NaN
  if (c.failed) return 0
  return c.throughput / task.baseline.throughput
}

const EPS = 1e-3

/**
 * Training rows, one per ok cell. Targets (docs/META.md): y1 = ln(speedup over the baseline of the
 * same task) — scale-free across machines and models, so the forest spends its splits on
 * method × context interactions rather than on "this machine is fast"; y2 = ln(wallMs) for
 * budgets; y3 = ln(ttftMsP50) for latency SLOs. Logs make errors relative and targets symmetric.
 */
export function trainingRows (ds: Dataset, tasks: readonly Task[] = ds.tasks, opts: { useReference?: boolean } = {}): TrainingRows {
  const X: number[][] = []
  const ySpeedup: number[] = []
  const yWall: number[] = []
  const yTtft: number[] = []
  const cells: Cell[] = []
  for (const t of tasks) {
    for (const c of t.cells.values()) {
      if (c.failed) continue
      X.push(featureVector(t.info, c.knobs))
      // eval trains on the task's reference (any task with an ok cell); the daemon on the baseline
      const ref = opts.useReference === true ? t.reference : t.baseline
      ySpeedup.push(ref != null ? Math.log(c.throughput / ref.throughput) : NaN)
      yWall.push(Math.log(Math.max(EPS, c.wallMs)))
      yTtft.push(Math.log(Math.max(EPS, c.ttftMs)))
      cells.push(c)
    }
  }
  return { X, ySpeedup, yWall, yTtft, cells }
}

/** Hash of the aggregated training set: same cells and medians → same hash on every peer. */
export function trainingSetHash (ds: Dataset): string {
  return stableId(ds.cells.map(c => [c.key, c.failed ? -1 : round(c.throughput), round(c.wallMs), round(c.ttftMs), c.records]), 32)
}

function round (x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : -1
}

export type Split = 'hardware' | 'model' | 'workload' | 'random'

/**
 * The physical machine of a hardware fingerprint: CPU model and the set of GPU names, without
 * backend, device count, RAM or OS. One box run under CUDA and Vulkan, or with 1 and 4 of its
 * GPUs, is one host, so a hardware split never trains on the box it tests on.
 */
export function hostKeyOf (hw: Pick<HardwareFingerprint, 'cpuModel' | 'gpus'>): string {
  const gpus = [...new Set((hw.gpus ?? []).map(g => g.name.trim().toLowerCase()))].sort()
  return stableId({ cpu: (hw.cpuModel ?? '').trim().toLowerCase(), gpus }, 16)
}

/** The group a task belongs to for grouped cross-validation (hardware: the host). */
export function groupOf (task: Task, split: Split): string {
  switch (split) {
    case 'hardware': return hostKeyOf(task.info.hardware)
    case 'model': return task.modelId
    case 'workload': return task.workload
    case 'random': return task.key
  }
}

/** Tasks by their group for `split`, groups in sorted order. */
export function groupTasks (tasks: readonly Task[], split: Split): Map<string, Task[]> {
  const groups = new Map<string, Task[]>()
  for (const t of tasks) {
    const g = groupOf(t, split)
    let arr = groups.get(g)
    if (arr == null) groups.set(g, arr = [])
    arr.push(t)
  }
  return new Map([...groups].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
}

/** The groups shuffled with `seed` (Fisher–Yates) and dealt round-robin into at most `k` folds. */
export function shuffledFolds (groups: ReadonlyMap<string, Task[]>, seed: number, k: number): Task[][] {
  const keys = [...groups.keys()]
  const rng = createRng(seed)
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [keys[i], keys[j]] = [keys[j], keys[i]]
  }
  const nf = Math.min(k, keys.length)
  const folds: Task[][] = Array.from({ length: nf }, () => [])
  keys.forEach((g, i) => folds[i % nf].push(...(groups.get(g) as Task[])))
  return folds
}

/** Strip a signed record to the body the meta-model reads (for feeding the worker thread). */
export function bodyOf (r: SignedRecord | RecordBody): HistoryBody {
  return 'body' in r ? r.body : r
}
