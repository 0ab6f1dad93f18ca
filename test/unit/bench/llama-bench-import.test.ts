import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { importLlamaBench, kvTypeBits, backendOf, logicalModelName, weightTypeSlug } from '../../../src/bench/llama-bench-import.js'
import { createRecord, toWire, verifyWire } from '../../../src/records/index.js'
import { buildDataset } from '../../../src/meta/dataset.js'
import { featureVector, FEATURE_NAMES } from '../../../src/meta/features.js'

const fixture = readFileSync(join(import.meta.dirname, '../../fixtures/llama-bench.jsonl'), 'utf8')

describe('llama-bench import', () => {
  it('turns every fixture line into a valid import body', () => {
    const { bodies, errors } = importLlamaBench(fixture)
    expect(errors).toEqual([])
    expect(bodies).toHaveLength(7)
    expect(bodies.every(b => b.source === 'import')).toBe(true)
  })

  it('maps a CPU prompt-processing test', () => {
    const [pp] = importLlamaBench(fixture).bodies
    expect(pp.hardware.cpuModel).toBe('AMD EPYC 7B13 64-Core Processor')
    expect(pp.hardware.backend).toBe('cpu')
    expect(pp.hardware.gpus).toEqual([])
    expect(pp.hardware.threads).toBe(2)
    expect(pp.model.name).toBe('Llama-3.2-1B-Instruct') // the logical model, not the file
    expect(pp.method.id).toBe('llama-bench:wQ4_0-kf16-vf16-fa0-b2048-ub512-t2-ngl0')
    expect(pp.model.architecture).toBe('llama')
    expect(pp.model.fileType).toBe('Q4_0')
    expect(pp.model.params).toBe(1235814432)
    expect(pp.model.weightBits).toBeCloseTo(4.99, 2)
    expect(pp.workload).toMatchObject({ family: 'llama-bench', name: 'llama-bench-pp512' })
    expect(pp.workload.features.promptTokensMean).toBe(512)
    expect(pp.method.knobs).toMatchObject({ flashAttention: 0, kvCacheBits: 16, batchSize: 2048, threads: 2 })
    // median of the samples, not the mean
    expect(pp.result.wallMs).toBeCloseTo(4208, 6)
    expect(pp.result.repeats).toBe(3)
    expect(pp.result.totalTokensPerSecond).toBeCloseTo(512 / 4.208, 6)
    expect(pp.result.outputTokensPerSecond).toBe(0)
    expect(pp.result.ttftMsP50).toBeCloseTo(4208, 6)
    expect(pp.result.spread).toBeCloseTo((4251 - 4190) / 4208, 6)
    expect(pp.timestamp).toBe(Date.parse('2026-11-20T10:00:01Z'))
    expect(pp.engine.version).toBe('llama-bench 3f4fc97f b6123')
  })

  it('maps generation, combined and GPU tests', () => {
    const b = importLlamaBench(fixture).bodies
    const tg = b[1]
    expect(tg.workload.name).toBe('llama-bench-tg128')
    expect(tg.result.outputTokensPerSecond).toBeCloseTo(128 / 6.94, 6)
    expect(tg.result.tpotMs).toBeCloseTo(6940 / 128, 6)
    const fa = b[2]
    expect(fa.method.knobs).toMatchObject({ flashAttention: 1, kvCacheBits: 8 })
    expect(fa.result.repeats).toBe(1)
    expect(fa.result.spread).toBeCloseTo(20 / 3822, 6)
    expect(fa.method.id).not.toBe(b[0].method.id)
    const pg = b[3]
    expect(pg.workload.name).toBe('llama-bench-pp512+tg128')
    expect(pg.result.ttftMsP50).toBe(0) // not measured by llama-bench
    const gpu = b[4]
    expect(gpu.hardware.backend).toBe('cuda')
    expect(gpu.hardware.gpus).toEqual([{ name: 'NVIDIA H100 80GB HBM3', vramMiB: 0 }])
    expect(gpu.method.knobs.flashAttention).toBe(1) // -1 = auto
    expect(gpu.hardware.id).not.toBe(b[0].hardware.id)
    expect(b[5].hardware.id).toBe(gpu.hardware.id)
    expect(b[6].workload.name).toBe('llama-bench-pp512-d4096')
    expect(b[6].workload.features.contextDepth).toBe(4096)
  })

  it('uses operator-supplied machine facts', () => {
    const [pp] = importLlamaBench(fixture, { cores: 64, ramMiB: 128000, os: 'linux-x64', pricePerHour: 1.5 }).bodies
    expect(pp.hardware).toMatchObject({ cores: 64, ramMiB: 128000, os: 'linux-x64', pricePerHour: 1.5 })
  })

  it('reports bad lines by number and code and keeps the good ones', () => {
    const lines = fixture.trim().split('\n')
    const good = JSON.parse(lines[0])
    const text = [
      lines[0],
      '{oops',
      JSON.stringify({ ...good, n_prompt: 0, n_gen: 0 }),
      JSON.stringify({ ...good, avg_ns: undefined }),
      JSON.stringify({ ...good, type_k: 'weird' }),
      JSON.stringify({ ...good, avg_ns: 1, samples_ns: undefined }), // 512 tokens in 1 ns: implausible
      '',
      '42',
      lines[1]
    ].join('\n')
    const { bodies, errors } = importLlamaBench(text)
    expect(bodies).toHaveLength(2)
    expect(errors.map(e => [e.line, e.code])).toEqual([
      [2, 'E_LB_JSON'], [3, 'E_LB_EMPTY'], [4, 'E_LB_FIELD'], [5, 'E_LB_FIELD'], [6, 'E_IMPLAUSIBLE'], [8, 'E_LB_JSON']
    ])
  })

  it('accepts `-o json` arrays too', () => {
    const arr = '[' + fixture.trim().split('\n').join(',') + ']'
    expect(importLlamaBench(arr).bodies).toHaveLength(7)
    expect(importLlamaBench('[1,').errors[0].code).toBe('E_LB_JSON')
  })

  it('produces bodies that sign and verify as records', async () => {
    const key = await generateKeyPair('Ed25519')
    const author = peerIdFromPrivateKey(key).toString()
    const { bodies } = importLlamaBench(fixture)
    let seq = 1
    for (const b of bodies) {
      const rec = await createRecord(key, author, seq++, b)
      const back = await verifyWire(toWire(rec))
      expect(back.id).toBe(rec.id)
    }
  })

  it('helpers', () => {
    expect(kvTypeBits('f16')).toBe(16)
    expect(kvTypeBits('q4_0')).toBe(4)
    expect(kvTypeBits('iq4_nl')).toBe(4)
    expect(kvTypeBits('f32')).toBe(32)
    expect(backendOf('CUDA,BLAS')).toBe('cuda')
    expect(backendOf('Metal,BLAS')).toBe('metal')
    expect(backendOf('BLAS')).toBe('cpu')
    expect(backendOf('Vulkan')).toBe('vulkan')
    expect(backendOf('SYCL')).toBe('sycl')
    expect(backendOf('ROCm')).toBe('rocm')
    expect(backendOf('HIP,BLAS')).toBe('rocm')
    expect(backendOf('Kompute')).toBe('other')
    expect(weightTypeSlug('Q4_K - Medium')).toBe('Q4_K_M')
    expect(weightTypeSlug('IQ2_XXS - 2.0625 bpw')).toBe('IQ2_XXS20625bpw')
    expect(logicalModelName('ggml-model-Q4_K_M')).toBe('ggml-model')
    expect(logicalModelName('Qwen2.5-7B-Instruct-f16')).toBe('Qwen2.5-7B-Instruct')
    expect(logicalModelName('Q4_0')).toBe('Q4_0')
  })

  const line0 = (): Record<string, unknown> => JSON.parse(fixture.trim().split('\n')[0])

  it('makes weight quantization a setting of one task, not another task', () => {
    const q4 = line0()
    const f16 = { ...line0(), model_filename: '/models/Llama-3.2-1B-Instruct-f16.gguf', model_type: 'llama 1B F16', model_size: 2471628864, avg_ns: 3e9, samples_ns: [3e9] }
    const { bodies, errors } = importLlamaBench([q4, f16].map(r => JSON.stringify(r)).join('\n'))
    expect(errors).toEqual([])
    expect(bodies[0].model.id).toBe(bodies[1].model.id)
    expect(bodies[0].method.id).not.toBe(bodies[1].method.id)
    expect(bodies[1].method.id).toMatch(/^llama-bench:wF16-/)
    const ds = buildDataset(bodies)
    expect(ds.tasks).toHaveLength(1)
    expect(ds.tasks[0].cells.size).toBe(2)
    // knobs per record: each cell keeps its own weight bits
    expect([...ds.tasks[0].cells.values()].map(c => Math.round(c.knobs.weightBits)).sort((x, y) => x - y)).toEqual([5, 16])
  })

  it('names type_v, n_ubatch, threads, split mode; adds the build only when one machine ran several', () => {
    const a = { ...line0(), type_v: 'q8_0', n_ubatch: 256, split_mode: 'row' }
    const one = importLlamaBench(JSON.stringify(a)).bodies[0]
    expect(one.method.id).toBe('llama-bench:wQ4_0-kf16-vq8_0-fa0-b2048-ub256-t2-ngl0-smrow')
    expect(one.method.knobs).toMatchObject({ kvCacheBits: 16, kvCacheBitsV: 8, ubatchSize: 256, gpuLayers: 0, build: 6123 })
    const two = importLlamaBench([a, { ...a, build_number: 7000 }].map(r => JSON.stringify(r)).join('\n')).bodies
    expect(two.map(b => b.method.id)).toEqual([one.method.id + '-bld6123', one.method.id + '-bld7000'])
  })

  it('n_depth reaches the features; ROCm records are v2 with their own backend', () => {
    const b = importLlamaBench(fixture).bodies[6]
    expect(featureVector(b, b.method.knobs)[FEATURE_NAMES.indexOf('wl.contextDepth')]).toBe(4096)
    const rocm = importLlamaBench(JSON.stringify({ ...line0(), backends: 'ROCm', gpu_info: 'AMD Instinct MI300X' })).bodies[0]
    expect(rocm.hardware.backend).toBe('rocm')
    expect(featureVector(rocm, rocm.method.knobs)[FEATURE_NAMES.indexOf('hw.memBwGBs')]).toBe(5300)
  })

  it('takes host facts: CPU, GPUs with VRAM, RAM and cores', () => {
    const [gpu] = importLlamaBench(fixture.trim().split('\n')[4], { cpuModel: 'AMD EPYC 9654', cores: 96, ramMiB: 768000, gpus: [{ name: 'NVIDIA H100 80GB HBM3', vramMiB: 81559 }] }).bodies
    expect(gpu.hardware).toMatchObject({ cpuModel: 'AMD EPYC 9654', cores: 96, ramMiB: 768000, gpus: [{ name: 'NVIDIA H100 80GB HBM3', vramMiB: 81559 }] })
  })
})
