import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { stableId } from '../records/stable-id.js'
import { errorMessage } from '../util/errors.js'
import { log } from '../util/log.js'
import type { SystemProbe } from './hardware.js'

/**
 * A measured capability of this machine (issue #16): memory bandwidth and a matrix-multiply
 * compute rate, measured in Node in about a second, for when the spec table
 * (device-specs.ts) has no row for this CPU. It is cached in `<data dir>/capability.json` and
 * measured again when the hardware fingerprint (CPU model, cores, RAM, OS)
 * changes. It does not travel in records: a record's hardware stays v1 bytes; the figure is
 * this node's own knowledge, used for its own machine's feature rows (meta/features.ts reads
 * `hardware.measured` when the spec table knows nothing). See docs/records.md.
 *
 * What it measures, honestly: `memBwGBs` is the achieved copy bandwidth of one thread over a
 * buffer much larger than caches (read + write bytes per second), typically well below the
 * spec-sheet peak of all channels; `computeTflops` is one thread's float64 multiply-add rate in
 * a blocked matmul, far below a tensor unit's FP16 peak. Both are lower bounds on the same
 * scale for every peer that runs this probe.
 */
export const CAPABILITY_FILE = 'capability.json'
export const PROBE_VERSION = 1

export interface MeasuredCapability {
  /** copy bandwidth, GB/s (1e9 bytes), read + written */
  memBwGBs: number
  /** float64 matmul rate, TFLOPS (1e12 flop/s, a multiply-add counted as 2) */
  computeTflops: number
}

export interface CapabilityCache extends MeasuredCapability {
  probeVersion: number
  /** stableId of the hardware facts it was measured on */
  fingerprint: string
  measuredAt: number
  /** wall time of the probe, ms */
  probeMs: number
  source: string
  /** 1-minute load average per core when measured: above 1 the figures are provisional */
  loadPerCore?: number
}

/** The probe measures the CPU and its memory: these facts, when they change, make a cached measurement stale. */
export type ProbeHardware = SystemProbe

/** Pure. */
export function probeFingerprint (hw: ProbeHardware): string {
  return stableId({ v: PROBE_VERSION, cpuModel: hw.cpuModel, cores: hw.cores, ramMiB: hw.ramMiB, os: hw.os })
}

/**
 * The measured capability for a record's hardware when it is this machine's (same CPU model,
 * cores, RAM and OS as the probe ran on), else undefined. Pure.
 */
export interface OwnCapability { probe: ProbeHardware, measured: MeasuredCapability }

export function measuredFor (hw: { cpuModel?: string, cores: number, ramMiB: number, os?: string }, own: OwnCapability | undefined): MeasuredCapability | undefined {
  if (own == null) return undefined
  const p = own.probe
  return hw.cpuModel === p.cpuModel && hw.cores === p.cores && hw.ramMiB === p.ramMiB && (hw.os == null || hw.os === p.os)
    ? { memBwGBs: own.measured.memBwGBs, computeTflops: own.measured.computeTflops }
    : undefined
}

/** A cache file's content when it is usable for `fingerprint`, else undefined. Pure. */
export function validCache (value: unknown, fingerprint: string): CapabilityCache | undefined {
  if (value == null || typeof value !== 'object') return undefined
  const c = value as Partial<CapabilityCache>
  const pos = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0
  if (c.probeVersion !== PROBE_VERSION || c.fingerprint !== fingerprint || !pos(c.memBwGBs) || !pos(c.computeTflops)) return undefined
  return c as CapabilityCache
}

/** The best of several timed runs: the least disturbed one on a shared machine. Pure. */
export function bestRate (units: number, msPerRun: readonly number[]): number {
  const ok = msPerRun.filter(ms => ms > 0 && Number.isFinite(ms))
  if (ok.length === 0 || !(units > 0)) return 0
  return units / (Math.min(...ok) / 1000)
}

const yieldNow = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

/** Copy a 32 MiB buffer several times; each copy is one short run, with the event loop free between. */
async function probeBandwidth (budgetMs: number): Promise<number> {
  const bytes = 32 * 1024 * 1024
  const a = Buffer.alloc(bytes, 1)
  const b = Buffer.alloc(bytes)
  const runs: number[] = []
  const end = performance.now() + budgetMs
  while (runs.length === 0 || (performance.now() < end && runs.length < 20)) {
    const t = performance.now()
    a.copy(b)
    runs.push(performance.now() - t)
    await yieldNow()
  }
  return bestRate(2 * bytes, runs) / 1e9
}

/** n×n float64 matmul (i-k-j order), repeated; each multiply is one short run. */
async function probeCompute (budgetMs: number): Promise<number> {
  const n = 128
  const A = new Float64Array(n * n).map((_, i) => (i % 7) * 0.5)
  const B = new Float64Array(n * n).map((_, i) => (i % 5) * 0.25)
  const C = new Float64Array(n * n)
  const runs: number[] = []
  const end = performance.now() + budgetMs
  let sink = 0
  while (runs.length === 0 || (performance.now() < end && runs.length < 50)) {
    const t = performance.now()
    C.fill(0)
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) {
        const aik = A[i * n + k]
        const row = k * n
        const out = i * n
        for (let j = 0; j < n; j++) C[out + j] += aik * B[row + j]
      }
    }
    runs.push(performance.now() - t)
    sink += C[n + 1]
    await yieldNow()
  }
  if (sink < 0) log('engine:capability')('impossible %d', sink)
  return bestRate(2 * n * n * n, runs) / 1e12
}

/**
 * Measure now: about `budgetMs` in all (at least one run of each part, so a loaded machine may
 * take longer), in short runs that leave the event loop free between them.
 */
export async function measureCapability (budgetMs = 1000): Promise<MeasuredCapability & { probeMs: number }> {
  const t = performance.now()
  const memBwGBs = await probeBandwidth(budgetMs / 2)
  const computeTflops = await probeCompute(budgetMs / 2)
  return { memBwGBs: round(memBwGBs, 3), computeTflops: round(computeTflops, 6), probeMs: Math.round(performance.now() - t) }
}

/**
 * A cached figure taken on a busy machine (load per core > 1) is measured again at a start with
 * less load, keeping the better figure of the two: contention only ever lowers a rate, so the
 * higher one is nearer the machine's capability. Pure.
 */
export function isProvisional (cache: CapabilityCache, loadPerCoreNow: number): boolean {
  return cache.loadPerCore != null && cache.loadPerCore > 1 && loadPerCoreNow < cache.loadPerCore
}

const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d

/**
 * The cached measurement of this machine, measured (and the cache written) when missing, from
 * another probe version, or taken on other hardware. A cache that cannot be written is logged,
 * not fatal: the figure is still returned.
 */
export async function loadOrMeasureCapability (dataDir: string, hw: ProbeHardware, opts: { budgetMs?: number, now?: () => number, loadPerCore?: number } = {}): Promise<CapabilityCache> {
  const logger = log('engine:capability')
  const file = join(dataDir, CAPABILITY_FILE)
  const fingerprint = probeFingerprint(hw)
  let cached: unknown
  try { cached = JSON.parse(readFileSync(file, 'utf8')) } catch {}
  const hit = validCache(cached, fingerprint)
  const loadPerCore = round(opts.loadPerCore ?? loadavg()[0] / Math.max(1, availableParallelism()), 2)
  if (hit != null && !isProvisional(hit, loadPerCore)) return hit
  const m = await measureCapability(opts.budgetMs)
  const out: CapabilityCache = {
    probeVersion: PROBE_VERSION,
    fingerprint,
    measuredAt: (opts.now ?? Date.now)(),
    ...m,
    memBwGBs: Math.max(m.memBwGBs, hit?.memBwGBs ?? 0),
    computeTflops: Math.max(m.computeTflops, hit?.computeTflops ?? 0),
    // the quietest load either figure was taken at: re-measured again only below it
    loadPerCore: Math.min(loadPerCore, hit?.loadPerCore ?? Infinity),
    source: `measured on this machine (swarmtune capability probe v${PROBE_VERSION}: 32 MiB buffer copy, 128×128 float64 matmul, one thread, best of runs)`
  }
  try {
    mkdirSync(dataDir, { recursive: true })
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(out, null, 2) + '\n')
    renameSync(tmp, file)
  } catch (err) {
    logger.error('cannot cache the capability probe in %s: %s', file, errorMessage(err))
  }
  logger('measured %s GB/s copy bandwidth, %s TFLOPS float64 in %d ms', out.memBwGBs, out.computeTflops, out.probeMs)
  return out
}
