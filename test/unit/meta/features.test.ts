import { describe, expect, it } from 'vitest'
import { FEATURE_NAMES, FEATURE_SCHEMA_VERSION, KNOB_DEFAULTS, featureBackend, TASK_FEATURE_NAMES, WORKLOAD_FEATURES, featureVector, knobFeatures, taskFeatures } from '../../../src/meta/features.js'
import { errorCode } from '../../../src/util/errors.js'

const task = () => ({
  hardware: { cores: 8, threads: 4, ramMiB: 32768, gpus: [{ vramMiB: 8192 }, { vramMiB: 4096 }], backend: 'cuda' },
  model: { params: 1e8, layers: 8, embd: 768, heads: 12, kvHeads: 4, weightBits: 16, ctx: 4096 },
  workload: { features: { requests: 4, promptTokensMean: 300, sharedPrefixRatio: 0.75, concurrency: 2 } as Record<string, number> }
})

const at = (v: number[], name: string): number => v[FEATURE_NAMES.indexOf(name)]

describe('meta features', () => {
  it('has one name per column and a schema version', () => {
    const v = featureVector(task(), { prefixCache: 1 })
    expect(v).toHaveLength(FEATURE_NAMES.length)
    expect(new Set(FEATURE_NAMES).size).toBe(FEATURE_NAMES.length)
    expect(FEATURE_SCHEMA_VERSION).toBeGreaterThanOrEqual(1)
  })

  it('sums VRAM, one-hot encodes the backend and logs the parameter count', () => {
    const v = taskFeatures(task())
    expect(v[TASK_FEATURE_NAMES.indexOf('hw.vramMiB')]).toBe(12288)
    expect(v[TASK_FEATURE_NAMES.indexOf('hw.gpus')]).toBe(2)
    expect(v[TASK_FEATURE_NAMES.indexOf('hw.backend.cuda')]).toBe(1)
    expect(v[TASK_FEATURE_NAMES.indexOf('hw.backend.cpu')]).toBe(0)
    expect(v[TASK_FEATURE_NAMES.indexOf('model.logParams')]).toBeCloseTo(8)
  })

  it('fills a missing workload feature with its documented default and sets its flag', () => {
    const v = featureVector(task(), {})
    const ngram = WORKLOAD_FEATURES.find(f => f.key === 'ngramOverlap')!
    expect(at(v, 'wl.ngramOverlap')).toBe(ngram.default)
    expect(at(v, 'wl.ngramOverlapMissing')).toBe(1)
    expect(at(v, 'wl.sharedPrefixRatio')).toBe(0.75)
    expect(at(v, 'wl.sharedPrefixRatioMissing')).toBe(0)
  })

  it('ignores unknown workload keys (forward compatible)', () => {
    const t = task()
    const a = featureVector(t, {})
    t.workload.features.somethingNew = 42
    expect(featureVector(t, {})).toEqual(a)
  })

  it('refuses NaN and Infinity with E_BAD_FEATURE', () => {
    const t = task()
    t.workload.features.promptTokensMean = NaN
    expect(() => featureVector(t, {})).toThrow(/promptTokensMean/)
    try { featureVector(t, {}) } catch (err) { expect(errorCode(err)).toBe('E_BAD_FEATURE') }
    const t2 = task()
    t2.model.params = Infinity
    expect(() => taskFeatures(t2)).toThrow(expect.objectContaining({ code: 'E_BAD_FEATURE' }))
    expect(() => knobFeatures({ parallel: NaN })).toThrow(expect.objectContaining({ code: 'E_BAD_FEATURE' }))
  })

  it('uses the baseline knob defaults for missing knobs', () => {
    const k = knobFeatures({ parallel: 4 })
    expect(k[Object.keys(KNOB_DEFAULTS).indexOf('parallel')]).toBe(4)
    expect(k[Object.keys(KNOB_DEFAULTS).indexOf('batchSize')]).toBe(KNOB_DEFAULTS.batchSize)
  })

  it('describes hardware by spec-sheet capability, and knows when a name is unknown', () => {
    const h100 = { ...task(), hardware: { cpuModel: 'AMD EPYC 9654', cores: 8, threads: 4, ramMiB: 0, gpus: [{ name: 'NVIDIA H100 80GB HBM3', vramMiB: 0 }], backend: 'cuda' } }
    const v = featureVector(h100, {})
    expect(at(v, 'hw.memBwGBs')).toBe(3350)
    expect(at(v, 'hw.fp16Tflops')).toBe(989)
    expect(at(v, 'hw.specKnown')).toBe(1)
    expect(at(v, 'hw.vramMiB')).toBe(80 * 1024) // reported 0: the spec knows it
    const cpu = featureVector({ ...h100, hardware: { ...h100.hardware, gpus: [], backend: 'cpu' } }, {})
    expect(at(cpu, 'hw.memBwGBs')).toBeCloseTo(460.8) // EPYC 9004 DRAM
    const odd = featureVector({ ...h100, hardware: { ...h100.hardware, gpus: [{ name: 'Mystery NPU', vramMiB: 1024 }] } }, {})
    expect(at(odd, 'hw.specKnown')).toBe(0)
    expect(at(odd, 'hw.memBwGBs')).toBe(0)
    expect(at(odd, 'hw.vramMiB')).toBe(1024)
  })

  it('maps unknown backends to other and a v1 AMD "other" to rocm', () => {
    expect(featureBackend({ backend: 'opencl', gpus: [] })).toBe('other')
    expect(featureBackend({ backend: 'other', gpus: [{ name: 'AMD Instinct MI300X' }] })).toBe('rocm')
    expect(featureBackend({ backend: 'rocm', gpus: [] })).toBe('rocm')
    const t = { ...task(), hardware: { ...task().hardware, backend: 'rocm' } }
    expect(at(featureVector(t, {}), 'hw.backend.rocm')).toBe(1)
  })

  it('reads context depth and the imported knobs; V cache bits follow K when absent', () => {
    const t = task()
    t.workload.features.contextDepth = 4096
    const v = featureVector(t, { kvCacheBits: 8, ubatchSize: 256, gpuLayers: 99 })
    expect(at(v, 'wl.contextDepth')).toBe(4096)
    expect(at(v, 'knob.kvCacheBitsV')).toBe(8)
    expect(at(v, 'knob.ubatchSize')).toBe(256)
    expect(at(v, 'knob.gpuLayers')).toBe(99)
    expect(at(featureVector(t, { kvCacheBits: 8, kvCacheBitsV: 16 }), 'knob.kvCacheBitsV')).toBe(16)
  })
})
