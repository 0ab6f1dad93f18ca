import { cpus } from 'node:os'
import type { Engine, Method, ModelSpec } from '../engine/types.js'
import type { SignedRecord } from '../records/types.js'
import type { EngineConfig } from '../engine/types.js'
import type { PublishHardware } from '../engine/hardware.js'
import { SwarmtuneError } from '../util/errors.js'
import type { BenchCellResult } from './runner.js'
import { BASELINE_ID } from './runner.js'
import { FAMILIES, SCALES, defaultParams, generateWorkload, importPrompts, standardWorkloads, type Family, type Scale, type Workload } from './workloads.js'

/**
 * What one `swarmtune bench` (CLI standalone, `POST /bench`, background sweep) runs, resolved
 * from the config and the user's selection. Shared so the three paths cannot drift apart.
 */
export interface BenchSelection {
  /** model name (config.engine.models or embedded); default config.engine.defaultModel */
  model?: string
  /** method ids from config/methods.json; default all */
  methods?: string[]
  /** workload families; default all five */
  workloads?: string[]
  /** JSONL file of OpenAI-style chat requests, added as an `imported` workload */
  prompts?: string
  repeats?: number
  scale?: Scale
  timeoutMs?: number
  seed?: number
  /** multiply every family's prompt length (shorter runs on slow or busy machines) */
  promptScale?: number
  /** multiply every family's request count (at least 2 requests are kept) */
  requestScale?: number
}

export interface PreparedBench {
  model: ModelSpec
  methods: Method[]
  baseline: Method
  workloads: Workload[]
  repeats: number
  timeoutMs: number
  /** threads a method with `threads: 0` gets */
  defaultThreads: number
  pricePerHour: number
  /** engine.publishHardware: what the records say about this machine */
  publishHardware?: PublishHardware
}

/** The `bench` section of the config. */
export interface BenchSettings {
  repeats: number
  timeoutMs: number
  background: {
    enabled: boolean
    /** share of wall time the sweep may spend measuring */
    share: number
    /** share while the quick first pass runs (a fresh peer publishes within minutes) */
    firstPassShare: number
    /** methods of the first pass (on the tiny-scale workloads, baseline first) */
    firstPassMethods: string[]
    /**
     * issue #17: the model of a first pass that runs before the default model's sweep when the
     * default model must still be generated or is large (default "tiny"; null: none), so a fresh
     * peer publishes its first records sooner. Optional for older configs.
     */
    firstPassModel?: string | null
    intervalMs: number
  }
  /**
   * issue #17 item 6: daemons of one host benchmark one at a time and not while another serves
   * (util/host-lock.ts). `dir`: the coordination directory (null: `<tmpdir>/swarmtune-host-<uid>`).
   * Optional for older configs (absent: on, default directory).
   */
  hostLock?: { enabled: boolean, dir: string | null }
}

/** The slice of the node's config that benchmarking reads. */
export interface BenchConfig {
  dataDir: string
  engine: EngineConfig
  bench: BenchSettings
  hardware: { pricePerHour: number }
}

export type EngineFactory = (config: { engine: Pick<EngineConfig, 'gpu' | 'threads'> }) => Promise<Engine>

/** The llama.cpp engine with the config's GPU choice and threads (loaded lazily: it is heavy). */
export const llamaEngineFactory: EngineFactory = async (config) => {
  const { createLlamaEngine } = await import('../engine/llama-engine.js')
  return await createLlamaEngine({ gpu: config.engine.gpu, threads: config.engine.threads })
}

export function checkSelection (sel: BenchSelection): void {
  const bad = (m: string): never => { throw new SwarmtuneError('E_USAGE', m) }
  if (sel.model != null && (typeof sel.model !== 'string' || sel.model === '')) bad('model must be a non-empty string')
  for (const k of ['methods', 'workloads'] as const) {
    const v = sel[k]
    if (v != null && (!Array.isArray(v) || v.some(x => typeof x !== 'string' || x === ''))) bad(`${k} must be an array of names`)
  }
  for (const w of sel.workloads ?? []) if (!(FAMILIES as readonly string[]).includes(w)) bad(`unknown workload family "${w}" (known: ${FAMILIES.join(', ')})`)
  if (sel.scale != null && !SCALES.includes(sel.scale)) bad(`scale must be one of ${SCALES.join(', ')}`)
  if (sel.repeats != null && (!Number.isInteger(sel.repeats) || sel.repeats < 1 || sel.repeats > 100)) bad('repeats must be an integer in [1, 100]')
  if (sel.timeoutMs != null && (!Number.isInteger(sel.timeoutMs) || sel.timeoutMs < 1)) bad('timeoutMs must be a positive integer')
  if (sel.seed != null && !Number.isInteger(sel.seed)) bad('seed must be an integer')
  if (sel.promptScale != null && (typeof sel.promptScale !== 'number' || !(sel.promptScale > 0 && sel.promptScale <= 16))) bad('promptScale must be a number in (0, 16]')
  if (sel.requestScale != null && (typeof sel.requestScale !== 'number' || !(sel.requestScale > 0 && sel.requestScale <= 16))) bad('requestScale must be a number in (0, 16]')
  if (sel.prompts != null && typeof sel.prompts !== 'string') bad('prompts must be a file path')
}

export async function prepareBench (config: BenchConfig, sel: BenchSelection): Promise<PreparedBench> {
  checkSelection(sel)
  const [{ resolveModel }, { loadMethods, selectMethods }] = await Promise.all([
    import('../engine/models.js'),
    import('../engine/methods.js')
  ])
  const catalog = loadMethods()
  const methods = sel.methods != null && sel.methods.length > 0 ? selectMethods(sel.methods, catalog) : catalog
  const baseline = catalog.find(m => m.id === BASELINE_ID)
  if (baseline == null) throw new SwarmtuneError('E_METHOD_INVALID', 'the method catalog has no baseline')
  const model = await resolveModel(config, sel.model ?? config.engine.defaultModel, config.dataDir)
  const families = sel.workloads != null && sel.workloads.length > 0 ? sel.workloads : (sel.prompts != null ? [] : [...FAMILIES])
  const workloads = sel.promptScale != null || sel.requestScale != null
    ? families.map(fam => {
      const d = defaultParams(fam as Family, sel.scale ?? 'default', sel.seed ?? 1)
      const promptLength = Math.max(4, Math.round(d.promptLength * (sel.promptScale ?? 1)))
      const requests = Math.max(2, Math.round(d.requests * (sel.requestScale ?? 1)))
      return generateWorkload(fam as Family, { ...d, promptLength, requests, concurrency: Math.min(d.concurrency, requests) }, sel.scale ?? 'default')
    })
    : standardWorkloads(sel.scale ?? 'default', families, sel.seed ?? 1)
  if (sel.prompts != null) workloads.push(importPrompts(sel.prompts))
  return {
    model,
    methods,
    baseline,
    workloads,
    repeats: sel.repeats ?? config.bench.repeats,
    timeoutMs: sel.timeoutMs ?? config.bench.timeoutMs,
    defaultThreads: config.engine.threads > 0 ? config.engine.threads : Math.max(1, cpus().length),
    pricePerHour: config.hardware.pricePerHour,
    publishHardware: config.engine.publishHardware ?? 'full'
  }
}

/** The `--json` object of one (method, workload) result. */
export interface BenchSummary {
  method: string
  workload: string
  family: string
  ok: boolean
  outputTokensPerSecond: number
  totalTokensPerSecond: number
  ttftMsP50: number
  wallMs: number
  spread: number
  repeats: number
  /** median CPU time of the benchmarking process per run, ms (standalone runs only; not in the record) */
  cpuMs?: number
  diverged?: boolean
  /** record id (absent only when the record could not be stored) */
  id?: string
  error?: string
  skipped?: string
}

export function summarizeCell (cell: BenchCellResult, record?: SignedRecord): BenchSummary {
  const r = cell.body.result
  const s: BenchSummary = {
    method: cell.method,
    workload: cell.workload,
    family: cell.family,
    ok: r.ok,
    outputTokensPerSecond: round(r.outputTokensPerSecond),
    totalTokensPerSecond: round(r.totalTokensPerSecond),
    ttftMsP50: round(r.ttftMsP50),
    wallMs: round(r.wallMs),
    spread: round(r.spread, 4),
    repeats: r.repeats
  }
  if (cell.cpuMs != null) s.cpuMs = round(cell.cpuMs)
  if (r.diverged !== undefined) s.diverged = r.diverged
  if (record != null) s.id = record.id
  if (r.error != null) s.error = r.error
  if (cell.skipped != null) s.skipped = cell.skipped
  return s
}

function round (x: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** A plain-text table of summaries, with each method's speedup over the baseline on the same workload. */
export function formatSummaries (rows: readonly BenchSummary[]): string {
  const base = new Map(rows.filter(r => r.method === BASELINE_ID && r.ok).map(r => [r.workload, r.wallMs]))
  const body = rows.map(r => {
    const b = base.get(r.workload)
    const speedup = r.ok && b != null && r.wallMs > 0 ? `${(b / r.wallMs).toFixed(2)}x` : ''
    return [
      r.family,
      r.method,
      r.ok ? r.outputTokensPerSecond.toFixed(1) : '-',
      r.ok ? r.ttftMsP50.toFixed(1) : '-',
      r.ok ? r.wallMs.toFixed(0) : '-',
      speedup,
      r.ok ? (r.diverged === true ? 'DIVERGED' : '') : (r.skipped != null ? `skipped: ${r.skipped}` : (r.error ?? 'failed'))
    ]
  })
  const head = ['workload', 'method', 'out tok/s', 'ttft p50 ms', 'wall ms', 'vs base', 'note']
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(r => r[i].length)))
  const fmt = (r: string[]): string => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join('  ').trimEnd()
  return [fmt(head), ...body.map(fmt)].join('\n') + '\n'
}
