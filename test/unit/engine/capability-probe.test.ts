import { describe, it, expect } from 'vitest'
import { PROBE_VERSION, bestRate, isProvisional, measuredFor, probeFingerprint, validCache, type CapabilityCache } from '../../../src/engine/capability-probe.js'
import { capabilityOf } from '../../../src/engine/device-specs.js'
import { taskFeatures, TASK_FEATURE_NAMES } from '../../../src/meta/features.js'
import { hardwareTask } from '../../../src/vote/advisor.js'

const probe = { cpuModel: 'Some Unlisted CPU 3000', cores: 2, ramMiB: 7940, os: 'linux-x64' }
const measured = { memBwGBs: 12.5, computeTflops: 0.002 }

describe('capability probe: pure parts', () => {
  it('the fingerprint changes with any CPU fact, and a cache is valid only for its fingerprint and version', () => {
    const fp = probeFingerprint(probe)
    expect(probeFingerprint({ ...probe })).toBe(fp)
    for (const other of [{ cores: 4 }, { ramMiB: 16000 }, { cpuModel: 'x' }, { os: 'darwin-arm64' }]) expect(probeFingerprint({ ...probe, ...other })).not.toBe(fp)
    const cache = { probeVersion: PROBE_VERSION, fingerprint: fp, measuredAt: 1, probeMs: 800, source: 's', ...measured }
    expect(validCache(cache, fp)).toEqual(cache)
    expect(validCache(cache, probeFingerprint({ ...probe, cores: 4 }))).toBeUndefined()
    expect(validCache({ ...cache, probeVersion: PROBE_VERSION + 1 }, fp)).toBeUndefined()
    expect(validCache({ ...cache, memBwGBs: 0 }, fp)).toBeUndefined()
    expect(validCache('junk', fp)).toBeUndefined()
    expect(validCache(null, fp)).toBeUndefined()
  })
  it('takes the best run, ignoring broken timings', () => {
    expect(bestRate(1000, [4, 2, 8])).toBe(500_000)
    expect(bestRate(1000, [0, Number.NaN, -1])).toBe(0)
    expect(bestRate(0, [1])).toBe(0)
  })
  it('applies to this machine\'s records only', () => {
    const own = { probe, measured }
    expect(measuredFor({ cpuModel: probe.cpuModel, cores: 2, ramMiB: 7940, os: 'linux-x64' }, own)).toEqual(measured)
    expect(measuredFor({ cpuModel: probe.cpuModel, cores: 2, ramMiB: 7940 }, own)).toEqual(measured)
    expect(measuredFor({ cpuModel: probe.cpuModel, cores: 4, ramMiB: 7940, os: 'linux-x64' }, own)).toBeUndefined()
    expect(measuredFor({ cpuModel: probe.cpuModel, cores: 2, ramMiB: 7940 }, undefined)).toBeUndefined()
  })
  it('fills the capability columns where the spec table has no row; a spec row and GPUs keep the table', () => {
    const cpu = { cpuModel: probe.cpuModel, backend: 'cpu', gpus: [] }
    expect(capabilityOf(cpu)).toMatchObject({ memBwGBs: 0, fp16Tflops: 0, known: 0 })
    expect(capabilityOf(cpu, measured)).toEqual({ memBwGBs: 12.5, memBwTotalGBs: 12.5, fp16Tflops: 0.002, memMiB: 0, known: 0, unified: 0 })
    expect(capabilityOf({ ...cpu, cpuModel: 'AMD EPYC 9654 96-Core Processor' }, measured).memBwGBs).toBe(460.8)
    expect(capabilityOf({ cpuModel: probe.cpuModel, backend: 'cuda', gpus: [{ name: 'Mystery GPU' }] }, measured).memBwGBs).toBe(0)
  })
  it('reaches the feature row through the serving task\'s hardware (names and measured kept)', () => {
    const hw = { id: 'h', ...probe, threads: 2, gpus: [], backend: 'cpu', pricePerHour: 0 }
    const task = (h: Parameters<typeof hardwareTask>[0]): number[] => taskFeatures({ hardware: hardwareTask(h), model: { params: 1e6, layers: 2, embd: 64, heads: 2, kvHeads: 2, weightBits: 32, ctx: 256 }, workload: { features: {} } })
    const col = TASK_FEATURE_NAMES.indexOf('hw.memBwGBs')
    expect(task(hw)[col]).toBe(0)
    expect(task({ ...hw, measured })[col]).toBe(12.5)
    expect(task({ ...hw, cpuModel: 'AMD EPYC 7763 64-Core Processor' })[col]).toBe(204.8)
  })
})

describe('isProvisional', () => {
  const cache = (loadPerCore?: number): CapabilityCache => ({ probeVersion: PROBE_VERSION, fingerprint: 'f', measuredAt: 1, probeMs: 5, source: 's', memBwGBs: 1, computeTflops: 1, ...(loadPerCore != null ? { loadPerCore } : {}) })
  it('re-measures a figure taken above one load per core only when the machine is quieter now', () => {
    expect(isProvisional(cache(2.5), 0.4)).toBe(true)
    expect(isProvisional(cache(2.5), 3)).toBe(false)
    expect(isProvisional(cache(0.9), 0.1)).toBe(false)
    expect(isProvisional(cache(), 0.1)).toBe(false)
  })
})
