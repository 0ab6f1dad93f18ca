import type { Engine, EngineSession, InferenceRequest, Method, ModelSpec, RequestOutcome } from '../engine/types.js'
import type { ModelDescriptor, ResultMetrics, UnsignedBody } from '../records/types.js'
import { SwarmtuneError, errorCode, errorMessage } from '../util/errors.js'
import { log, type Logger } from '../util/log.js'
import { workloadFeatures } from '../meta/workload-features.js'
import { hardwareFingerprint, type PublishHardware, type SystemProbe } from '../engine/hardware.js'
import { mean, median, percentile, spread } from '../util/stats.js'
import type { Workload } from './workloads.js'

/**
 * The benchmark runner: every (method, workload) cell becomes exactly one record body, a
 * measurement or a failure (unsupported, open error, timeout, engine error) with its reason —
 * never a silent gap.
 *
 * Per cell: open a session with the method's knobs, one warm-up run, then `repeats` measured
 * runs; metrics are medians over the repeats, `spread` is (max - min) / median of wall time.
 * A run hands the engine the workload's requests in waves of `concurrency` (the arrival
 * pattern); the engine's `parallel` knob decides how many of a wave it decodes together.
 *
 * Cells run workload by workload, the baseline first in each: its greedy output is the
 * reference for the lossless check (`diverged`) and for the workload's n-gram overlap feature,
 * so every record of one workload carries the same features whatever methods were selected.
 * When the baseline is not among the selected methods it still runs once per workload,
 * unrecorded.
 *
 * Every run starts cold (`EngineSession.reset()` where the engine has it): the prefix cache
 * only reuses what the workload itself shares, in arrival order, which is what the workload's
 * `reusablePrefixRatio` describes. The warm-up run pages the weights in and warms the code paths.
 */

export const BASELINE_ID = 'baseline'

export type BenchPhase = 'warmup' | 'repeat' | 'reference' | 'skipped' | 'failed' | 'done'

export interface BenchProgressEvent {
  phase: BenchPhase
  method: string
  workload: string
  /** runs finished so far / planned in total (skips and failures count their planned runs) */
  done: number
  total: number
  message?: string
}

export interface BenchCellResult {
  method: string
  workload: string
  family: string
  body: UnsignedBody
  /** the reason when the cell was not measured (unsupported method) */
  skipped?: string
  /**
   * median CPU time of this process per run, ms (not part of the record schema): on a shared
   * machine other load inflates wall time but hardly CPU time, so speedups by CPU time are the
   * steadier comparison there (they ignore waiting and count spinning threads)
   */
  cpuMs?: number
}

export interface RunBenchmarkOptions {
  engine: Engine
  model: ModelSpec
  methods: readonly Method[]
  workloads: readonly Workload[]
  /** measured runs per cell after the warm-up (default 3) */
  repeats?: number
  /** unmeasured runs before the repeats (default 1) */
  warmups?: number
  /** limit for one run of one workload, ms (default 120000) */
  timeoutMs?: number
  /** the baseline method when it is not among `methods` (default: a method with id 'baseline' in `methods`) */
  baseline?: Method
  /** the engine's thread count when a method's `threads` knob is 0 (config engine.threads) */
  defaultThreads?: number
  /** hardware.pricePerHour from config */
  pricePerHour?: number
  /** engine.publishHardware from config (default full) */
  publishHardware?: PublishHardware
  onProgress?: (ev: BenchProgressEvent) => void
  /** called as each cell finishes (e.g. to sign and store it at once) */
  onResult?: (r: BenchCellResult) => void | Promise<void>
  /** cancels the whole run: the cell in progress and those not started are not recorded */
  signal?: AbortSignal
  /** injectable machine facts (tests) */
  probe?: SystemProbe
}

interface RunMeasure {
  wallMs: number
  /** CPU time of this process during the run (all threads), ms: robust to other load on a shared machine */
  cpuMs: number
  promptTokens: number
  outputTokens: number
  ttfts: number[]
  tpots: number[]
  outputs: number[][]
}

class BenchTimeoutError extends SwarmtuneError {
  constructor (ms: number) { super('E_TIMEOUT', `run exceeded the ${ms} ms limit`) }
}

/** One run of a whole workload; the signal aborts it (the engine sees it, and we stop waiting). */
export async function runWorkload (session: EngineSession, workload: Workload, timeoutMs: number, outer?: AbortSignal): Promise<RunMeasure> {
  const ac = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let onOuter: (() => void) | undefined
  const stopped = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new BenchTimeoutError(timeoutMs)
      ac.abort(err)
      reject(err)
    }, timeoutMs)
    onOuter = () => {
      const err = new SwarmtuneError('E_ABORTED', 'benchmark cancelled')
      ac.abort(err)
      reject(err)
    }
    if (outer?.aborted === true) onOuter()
    else outer?.addEventListener('abort', onOuter, { once: true })
  })
  stopped.catch(() => {})
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  let inflight: Promise<unknown> | undefined
  try {
    const outcomes: RequestOutcome[] = []
    const c = Math.max(1, workload.params.concurrency)
    for (let i = 0; i < workload.requests.length; i += c) {
      const wave: InferenceRequest[] = workload.requests.slice(i, i + c)
      const p = session.runBatch(wave, { signal: ac.signal })
      inflight = p
      const batch = await Promise.race([p, stopped])
      inflight = undefined
      if (batch.requests.length !== wave.length) {
        throw new SwarmtuneError('E_ENGINE_RESULT', `engine returned ${batch.requests.length} outcomes for ${wave.length} requests`)
      }
      outcomes.push(...batch.requests)
    }
    const wallMs = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    return {
      wallMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      promptTokens: outcomes.reduce((s, o) => s + o.promptTokens, 0),
      outputTokens: outcomes.reduce((s, o) => s + o.outputTokens, 0),
      // client-side TTFT: a request queued behind others in its wave waited too
      ttfts: outcomes.map(o => (o.queueMs ?? 0) + o.ttftMs),
      tpots: outcomes.filter(o => o.outputTokens > 1).map(o => (o.latencyMs - o.ttftMs) / (o.outputTokens - 1)),
      outputs: outcomes.map(o => o.tokens)
    }
  } catch (err) {
    // let the aborted batch wind down before the caller closes the session under it
    if (inflight != null) await Promise.race([inflight.catch(() => {}), new Promise(resolve => setTimeout(resolve, ABORT_GRACE_MS).unref())])
    throw err
  } finally {
    clearTimeout(timer)
    if (onOuter != null) outer?.removeEventListener('abort', onOuter)
  }
}

/** How long an aborted run may take to stop before its session is closed anyway. */
const ABORT_GRACE_MS = 10_000

export function sameOutputs (a: readonly (readonly number[])[], b: readonly (readonly number[])[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    if (a[i].length !== b[i].length) return false
    for (let j = 0; j < a[i].length; j++) if (a[i][j] !== b[i][j]) return false
  }
  return true
}

export function peakRssMiB (): number {
  // maxRSS is in KiB: the process's high-water mark so far (documented as such)
  return Math.round(process.resourceUsage().maxRSS / 1024 * 10) / 10
}

const pos = (x: number): number => Number.isFinite(x) && x > 0 ? x : 0

/** Medians over the measured runs (pure). */
export function aggregate (runs: readonly RunMeasure[], rssMiB: number): ResultMetrics {
  const walls = runs.map(r => r.wallMs)
  const perRun = (f: (r: RunMeasure) => number): number => median(runs.map(f))
  return {
    ok: true,
    repeats: runs.length,
    wallMs: median(walls),
    promptTokens: perRun(r => r.promptTokens),
    outputTokens: perRun(r => r.outputTokens),
    outputTokensPerSecond: pos(perRun(r => r.outputTokens / (r.wallMs / 1000))),
    totalTokensPerSecond: pos(perRun(r => (r.promptTokens + r.outputTokens) / (r.wallMs / 1000))),
    ttftMsP50: pos(perRun(r => percentile(r.ttfts, 50))),
    ttftMsP95: pos(perRun(r => percentile(r.ttfts, 95))),
    tpotMs: pos(perRun(r => mean(r.tpots))),
    peakRssMiB: rssMiB,
    spread: spread(walls)
  }
}

export function failedResult (error: string, rssMiB = 0): ResultMetrics {
  return {
    ok: false,
    error: error.slice(0, 1024),
    repeats: 0,
    wallMs: 0,
    promptTokens: 0,
    outputTokens: 0,
    outputTokensPerSecond: 0,
    totalTokensPerSecond: 0,
    ttftMsP50: 0,
    ttftMsP95: 0,
    tpotMs: 0,
    peakRssMiB: rssMiB,
    spread: 0
  }
}

/** The methods in run order: the baseline first (its outputs are the reference), then the rest as given (pure). */
function runOrder (methods: readonly Method[]): { methods: Method[], baselineInList: Method | undefined } {
  const baselineInList = methods.find(m => m.id === BASELINE_ID)
  return {
    baselineInList,
    methods: baselineInList != null ? [baselineInList, ...methods.filter(m => m !== baselineInList)] : [...methods]
  }
}

/** A workload's features without a tokenizer (no session ever opened for it) (pure). */
function untokenizedFeatures (w: Workload): Record<string, number> {
  return { requests: w.requests.length, concurrency: w.params.concurrency, outputTokensMean: mean(w.requests.map(r => r.maxTokens)) }
}

/** What one benchmark shares across its cells: progress counters, the baseline's outputs, the workloads' features. */
interface BenchRun {
  opts: RunBenchmarkOptions
  descriptor: ModelDescriptor
  logger: Logger
  timeoutMs: number
  warmups: number
  /** runs per cell: warm-ups + repeats */
  perCell: number
  total: number
  done: number
  /** greedy outputs of the baseline, by workload name */
  reference: Map<string, number[][]>
  features: Map<string, Record<string, number>>
  results: BenchCellResult[]
}

function progress (run: BenchRun, phase: BenchPhase, method: string, workload: string, message?: string): void {
  run.opts.onProgress?.({ phase, method, workload, done: run.done, total: run.total, message })
}

const cancelled = (run: BenchRun): boolean => run.opts.signal?.aborted === true

/** The workload's features, computed once per workload from the first session that can tokenize. */
function featuresOf (run: BenchRun, w: Workload, session: EngineSession | undefined): Record<string, number> {
  let f = run.features.get(w.name)
  if (f == null && session != null) {
    try {
      f = workloadFeatures({
        prompts: w.requests.map(r => session.tokenize(r.prompt)),
        maxTokens: w.requests.map(r => r.maxTokens),
        concurrency: w.params.concurrency,
        outputs: run.reference.get(w.name)
      })
      run.features.set(w.name, f)
    } catch (err) {
      run.logger('tokenizing %s failed: %s', w.name, errorMessage(err))
    }
  }
  return f ?? untokenizedFeatures(w)
}

function bodyOf (run: BenchRun, method: Method, w: Workload, result: ResultMetrics, session?: EngineSession): UnsignedBody {
  const { engine, defaultThreads, pricePerHour, probe, publishHardware } = run.opts
  return {
    source: 'benchmark',
    hardware: hardwareFingerprint({
      backend: engine.backend,
      gpus: engine.gpus,
      threads: method.knobs.threads > 0 ? method.knobs.threads : (defaultThreads ?? 1),
      pricePerHour,
      publish: publishHardware
    }, probe),
    engine: { ...engine.info },
    // the logical model (default file): weight quantization is the method's weightBits knob, so
    // a weights-q8 run must describe the same model as its baseline
    model: run.descriptor,
    workload: { family: w.family, name: w.name, features: featuresOf(run, w, session) },
    method: { id: method.id, knobs: { ...method.knobs } as unknown as Record<string, number> },
    result
  }
}

async function emit (run: BenchRun, r: BenchCellResult): Promise<void> {
  run.results.push(r)
  await run.opts.onResult?.(r)
}

/** The unrecorded reference pass, when the baseline itself is not being measured. */
async function runReference (run: BenchRun, w: Workload, baseline: Method): Promise<void> {
  const { engine, model } = run.opts
  const sup = engine.supports(model, baseline)
  let session: EngineSession | undefined
  try {
    if (!sup.ok) throw new SwarmtuneError('E_UNSUPPORTED', sup.reason)
    session = await engine.open(model, baseline)
    const measure = await runWorkload(session, w, run.timeoutMs, run.opts.signal)
    run.reference.set(w.name, measure.outputs)
    featuresOf(run, w, session)
    run.done++
    progress(run, 'reference', baseline.id, w.name)
  } catch (err) {
    // without a reference the lossless check cannot run: `diverged` stays absent
    run.logger('reference run failed: %s', errorMessage(err))
    run.done++
    progress(run, 'failed', baseline.id, w.name, `reference run failed: ${errorMessage(err)}`)
  } finally {
    await session?.close().catch(() => {})
  }
}

/** Warm-ups then repeats of one cell on an open session; the baseline's first run becomes the reference. */
async function measureCell (run: BenchRun, session: EngineSession, w: Workload, method: Method, isBaseline: boolean): Promise<{ runs: RunMeasure[], diverged: boolean }> {
  const runs: RunMeasure[] = []
  let diverged = false
  for (let i = 0; i < run.perCell; i++) {
    await session.reset?.()
    const measure = await runWorkload(session, w, run.timeoutMs, run.opts.signal)
    if (isBaseline && i === 0) run.reference.set(w.name, measure.outputs)
    const ref = run.reference.get(w.name)
    if (method.lossless && !isBaseline && ref != null && !sameOutputs(ref, measure.outputs)) diverged = true
    if (i >= run.warmups) runs.push(measure)
    run.done++
    progress(run, i < run.warmups ? 'warmup' : 'repeat', method.id, w.name)
  }
  return { runs, diverged }
}

/** One (method, workload) cell, recorded as a measurement, a skip or a failure; false when the benchmark was cancelled. */
async function runCell (run: BenchRun, w: Workload, method: Method, baseline: Method | undefined): Promise<boolean> {
  const { engine, model } = run.opts
  const cell = { method: method.id, workload: w.name, family: w.family }
  const sup = engine.supports(model, method)
  if (!sup.ok) {
    run.done += run.perCell
    progress(run, 'skipped', method.id, w.name, sup.reason)
    await emit(run, { ...cell, body: bodyOf(run, method, w, failedResult(`E_UNSUPPORTED: ${sup.reason}`)), skipped: sup.reason })
    return true
  }
  let session: EngineSession | undefined
  const cellStart = run.done
  try {
    session = await engine.open(model, method)
    const isBaseline = method === baseline
    const { runs, diverged } = await measureCell(run, session, w, method, isBaseline)
    const result = aggregate(runs, peakRssMiB())
    if (method.lossless && !isBaseline && run.reference.has(w.name)) result.diverged = diverged
    const body = bodyOf(run, method, w, result, session)
    progress(run, 'done', method.id, w.name)
    await emit(run, { ...cell, body, cpuMs: median(runs.map(r => r.cpuMs)) })
  } catch (err) {
    if (cancelled(run)) return false
    run.done = cellStart + run.perCell
    const message = `${errorCode(err)}: ${errorMessage(err)}`
    run.logger('cell %s × %s failed: %s', method.id, w.name, message)
    progress(run, 'failed', method.id, w.name, message)
    await emit(run, { ...cell, body: bodyOf(run, method, w, failedResult(message, peakRssMiB()), session) })
  } finally {
    await session?.close().catch(err => { run.logger('closing session failed: %s', errorMessage(err)) })
  }
  return true
}

export async function runBenchmark (opts: RunBenchmarkOptions): Promise<BenchCellResult[]> {
  const repeats = Math.max(1, Math.floor(opts.repeats ?? 3))
  const warmups = Math.max(0, Math.floor(opts.warmups ?? 1))
  const { engine, model, workloads } = opts
  if (workloads.length === 0) throw new SwarmtuneError('E_BENCH_EMPTY', 'no workloads selected')
  if (opts.methods.length === 0) throw new SwarmtuneError('E_BENCH_EMPTY', 'no methods selected')

  // a bad model path fails here, clearly, before anything is measured
  const descriptor: ModelDescriptor = await engine.describe(model)

  const { methods, baselineInList } = runOrder(opts.methods)
  const baseline = baselineInList ?? opts.baseline
  const needReference = baseline != null && baselineInList == null
  const perCell = warmups + repeats
  const run: BenchRun = {
    opts,
    descriptor,
    logger: log('bench'),
    timeoutMs: opts.timeoutMs ?? 120_000,
    warmups,
    perCell,
    total: methods.length * workloads.length * perCell + (needReference ? workloads.length : 0),
    done: 0,
    reference: new Map(),
    features: new Map(),
    results: []
  }

  // Workload-major order: all methods of one workload run back to back, so each speedup over the
  // baseline compares measurements minutes apart rather than a whole sweep apart (load drifts).
  for (const w of workloads) {
    if (cancelled(run)) return run.results
    if (needReference && baseline != null) await runReference(run, w, baseline)
    for (const method of methods) {
      // a cancelled benchmark is not a failed measurement: stop without recording anything more
      if (cancelled(run)) return run.results
      if (!await runCell(run, w, method, baseline)) return run.results
    }
  }
  return run.results
}
