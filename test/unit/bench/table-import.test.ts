import { describe, expect, it } from 'vitest'
import { TABLE_PRESETS, csvFields, importTable, paramsFromName } from '../../../src/bench/table-import.js'
import { buildDataset } from '../../../src/meta/dataset.js'

// made here, shaped like LLM-Inference-Bench's quantization table, with its defects
const QUANT = [
  'Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,kv_cache_dtype,latency,throughput',
  'Nvidia H100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,Weight = fp8, KV Cache = fp8,0.77,332.4',
  'Nvidia H100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,"Weight = fp16, KV Cache = fp16",0.9,280.1',
  '',
  'Nvidia H100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,"Weight = fp16, KV Cache = fp16",0.9,280.1',
  'Nvidia H100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,128,1,"Weight = fp16, KV Cache = fp8",0.9,-5',
  'Nvidia H100 GPU,1,vLLM,meta-llama/Meta-Llama-3-8B,abc,1,"Weight = fp16, KV Cache = fp8",0.9,10',
  'Nvidia H100 GPU,1,vLLM'
].join('\n')

describe('table import', () => {
  it('parses quoted CSV fields', () => {
    expect(csvFields('a,"b, c","d ""e"""')).toEqual(['a', 'b, c', 'd "e"'])
  })

  it('repairs the unquoted comma, reports every bad row by line and code, stores nothing from it', () => {
    const r = importTable(QUANT, TABLE_PRESETS['llm-inference-bench-quantization'])
    expect(r.repaired).toBe(1)
    expect(r.bodies).toHaveLength(2)
    expect(r.errors.map(e => [e.line, e.code])).toEqual([[5, 'E_TABLE_DUPLICATE'], [6, 'E_TABLE_VALUE'], [7, 'E_TABLE_VALUE'], [8, 'E_TABLE_FIELDS']])
    expect(r.bodies[0].method.id).toBe('table:vLLM-Weightfp8-KV-Cachefp8')
    const ds = buildDataset(r.bodies)
    expect(ds.tasks).toHaveLength(1)
    expect(ds.tasks[0].cells.size).toBe(2)
    expect(r.bodies[0].hardware.backend).toBe('cuda')
  })

  it('a mapping that names a missing column is a coded error', () => {
    expect(() => importTable(QUANT, { ...TABLE_PRESETS['llm-inference-bench-quantization'], throughput: 'Nope' })).toThrow(expect.objectContaining({ code: 'E_TABLE_MAPPING' }))
  })

  it('parameter counts from model names', () => {
    expect(paramsFromName('meta-llama/Llama-2-70b-hf')).toBe(70e9)
    expect(paramsFromName('mistralai/Mixtral-8x7B-v0.1')).toBe(56e9)
    expect(paramsFromName('bigscience/bloom-7b1')).toBe(7e9)
    expect(paramsFromName('gpt2')).toBe(0)
  })

  it('host facts describe every row\'s machine; a named GPU gets its VRAM; the hardware id changes with them', () => {
    const plain = importTable(QUANT, TABLE_PRESETS['llm-inference-bench-quantization'])
    const r = importTable(QUANT, TABLE_PRESETS['llm-inference-bench-quantization'], { cpuModel: 'AMD EPYC 9654', cores: 96, ramMiB: 1024, pricePerHour: 2.5, gpus: [{ name: 'nvidia h100 gpu', vramMiB: 81559 }] })
    expect(r.bodyLines).toEqual([2, 3])
    expect(r.bodies[0].hardware).toMatchObject({ cpuModel: 'AMD EPYC 9654', cores: 96, ramMiB: 1024, pricePerHour: 2.5, gpus: [{ name: 'Nvidia H100 GPU', vramMiB: 81559 }] })
    expect(r.bodies[0].hardware.id).not.toBe(plain.bodies[0].hardware.id)
    expect(plain.bodies[0].hardware).toMatchObject({ cpuModel: 'unknown CPU', cores: 1, ramMiB: 0, pricePerHour: 0 })
  })
})
