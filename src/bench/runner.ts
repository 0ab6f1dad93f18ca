import type { Engine, EngineSession, InferenceRequest, Method, ModelSpec, RequestOutcome } from '../engine/types.js'
import type { ModelDescriptor, ResultMetrics, UnsignedBody } from '../records/types.js'
import { SwarmtuneError, errorCode, errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import { workloadFeatures } from '../meta/workload-features.js'
import { hardwareFingerprint, type SystemProbe } from '../engine/hardware.js'
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

export async function runBenchmark (opts: RunBenchmarkOptions): Promise<BenchCellResult[]> {
  const logger = log('bench')
  const repeats = Math.max(1, Math.floor(opts.repeats ?? 3))
  const warmups = Math.max(0, Math.floor(opts.warmups ?? 1))
  const timeoutMs = opts.timeoutMs ?? 120_000
  const { engine, model, workloads } = opts
  if (workloads.length === 0) throw new SwarmtuneError('E_BENCH_EMPTY', 'no workloads selected')
  if (opts.methods.length === 0) throw new SwarmtuneError('E_BENCH_EMPTY', 'no methods selected')

  // a bad model path fails here, clearly, before anything is measured
  const descriptor: ModelDescriptor = await engine.describe(model)

  const baselineInList = opts.methods.find(m => m.id === BASELINE_ID)
  const baseline = baselineInList ?? opts.baseline
  // baseline first, then the rest in the order given
  const methods = baselineInList != null ? [baselineInList, ...opts.methods.filter(m => m !== baselineInList)] : [...opts.methods]
  const needReference = baseline != null && baselineInList == null

  const perCell = warmups + repeats
  const total = methods.length * workloads.length * perCell + (needReference ? workloads.length : 0)
  let done = 0
  const progress = (phase: BenchPhase, method: string, workload: string, message?: string): void => {
    opts.onProgress?.({ phase, method, workload, done, total, message })
  }

  const cancelled = (): boolean => opts.signal?.aborted === true
  const reference = new Map<string, number[][]>()
  const features = new Map<string, Record<string, number>>()
  const results: BenchCellResult[] = []

  const featuresOf = (w: Workload, session: EngineSession | undefined): Record<string, number> => {
    let f = features.get(w.name)
    if (f == null && session != null) {
      try {
        f = workloadFeatures({
          prompts: w.requests.map(r => session.tokenize(r.prompt)),
          maxTokens: w.requests.map(r => r.maxTokens),
          concurrency: w.params.concurrency,
          outputs: reference.get(w.name)
        })
        features.set(w.name, f)
      } catch (err) {
        logger('tokenizing %s failed: %s', w.name, errorMessage(err))
      }
    }
    // no session ever opened for this workload: only what needs no tokenizer
    return f ?? { requests: w.requests.length, concurrency: w.params.concurrency, outputTokensMean: mean(w.requests.map(r => r.maxTokens)) }
  }

  const bodyOf = (method: Method, w: Workload, result: ResultMetrics, session?: EngineSession): UnsignedBody => ({
    source: 'benchmark',
    hardware: hardwareFingerprint({
      backend: engine.backend,
      gpus: engine.gpus,
      threads: method.knobs.threads > 0 ? method.knobs.threads : (opts.defaultThreads ?? 1),
      pricePerHour: opts.pricePerHour
    }, opts.probe),
    engine: { ...engine.info },
    // the logical model (default file): weight quantization is the method's weightBits knob, so
    // a weights-q8 run must describe the same model as its baseline
    model: descriptor,
    workload: { family: w.family, name: w.name, features: featuresOf(w, session) },
    method: { id: method.id, knobs: { ...method.knobs } as unknown as Record<string, number> },
    result
  })

  const emit = async (r: BenchCellResult): Promise<void> => {
    results.push(r)
    await opts.onResult?.(r)
  }

  // Workload-major order: all methods of one workload run back to back, so each speedup over the
  // baseline compares measurements minutes apart rather than a whole sweep apart (load drifts).
  for (const w of workloads) {
    // the unrecorded reference pass, when the baseline itself is not being measured
    if (cancelled()) return results
    if (needReference && baseline != null) {
      const sup = engine.supports(model, baseline)
      let session: EngineSession | undefined
      try {
        if (!sup.ok) throw new SwarmtuneError('E_UNSUPPORTED', sup.reason)
        session = await engine.open(model, baseline)
        const run = await runWorkload(session, w, timeoutMs, opts.signal)
        reference.set(w.name, run.outputs)
        featuresOf(w, session)
        done++
        progress('reference', baseline.id, w.name)
      } catch (err) {
        // without a reference the lossless check cannot run: `diverged` stays absent
        logger('reference run failed: %s', errorMessage(err))
        done++
        progress('failed', baseline.id, w.name, `reference run failed: ${errorMessage(err)}`)
      } finally {
        await session?.close().catch(() => {})
      }
    }

    for (const method of methods) {
      // a cancelled benchmark is not a failed measurement: stop without recording anything more
      if (cancelled()) return results
      const sup = engine.supports(model, method)
      if (!sup.ok) {
        done += perCell
        progress('skipped', method.id, w.name, sup.reason)
        await emit({ method: method.id, workload: w.name, family: w.family, body: bodyOf(method, w, failedResult(`E_UNSUPPORTED: ${sup.reason}`)), skipped: sup.reason })
        continue
      }
      let session: EngineSession | undefined
      const cellStart = done
      try {
        session = await engine.open(model, method)
        const runs: RunMeasure[] = []
        let diverged = false
        const isBaseline = method === baseline
        for (let i = 0; i < perCell; i++) {
          await session.reset?.()
          const run = await runWorkload(session, w, timeoutMs, opts.signal)
          if (isBaseline && i === 0) reference.set(w.name, run.outputs)
          const ref = reference.get(w.name)
          if (method.lossless && !isBaseline && ref != null && !sameOutputs(ref, run.outputs)) diverged = true
          if (i >= warmups) runs.push(run)
          done++
          progress(i < warmups ? 'warmup' : 'repeat', method.id, w.name)
        }
        const result = aggregate(runs, peakRssMiB())
        if (method.lossless && !isBaseline && reference.has(w.name)) result.diverged = diverged
        const body = bodyOf(method, w, result, session)
        progress('done', method.id, w.name)
        await emit({ method: method.id, workload: w.name, family: w.family, body, cpuMs: median(runs.map(r => r.cpuMs)) })
      } catch (err) {
        if (cancelled()) return results
        done = cellStart + perCell
        const code = errorCode(err)
        const message = `${code}: ${errorMessage(err)}`
        logger('cell %s × %s failed: %s', method.id, w.name, message)
        progress('failed', method.id, w.name, message)
        await emit({ method: method.id, workload: w.name, family: w.family, body: bodyOf(method, w, failedResult(message, peakRssMiB()), session) })
      } finally {
        await session?.close().catch(err => { logger('closing session failed: %s', errorMessage(err)) })
      }
    }
  }
  return results
}
