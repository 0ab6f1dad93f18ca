import { describe, expect, it } from 'vitest'
import { capabilityOf, deviceSpecTable, lookupDevice } from '../../../src/engine/device-specs.js'

describe('device spec table', () => {
  it('every row has a source and a positive bandwidth', () => {
    for (const r of deviceSpecTable()) {
      expect(r.source).not.toBe('')
      expect(r.memBwGBs).toBeGreaterThan(0)
    }
  })

  it('resolves specific variants before the family and the short names of published tables', () => {
    expect(lookupDevice('NVIDIA H100 NVL')?.memGiB).toBe(94)
    expect(lookupDevice('NVIDIA H100 80GB HBM3')?.memBwGBs).toBe(3350)
    expect(lookupDevice('NVIDIA A100-SXM4-40GB')?.memBwGBs).toBe(1555)
    expect(lookupDevice('Nvidia GH200 GPU')?.memGiB).toBe(96)
    expect(lookupDevice('AMD MI250 GPU')?.name).toBe('AMD Instinct MI250')
    expect(lookupDevice('Intel PVC GPU')?.name).toMatch(/Max 1550/)
    expect(lookupDevice('NVIDIA L40S')?.name).toBe('NVIDIA L40S')
    expect(lookupDevice('NVIDIA L4')?.name).toBe('NVIDIA L4')
    expect(lookupDevice('Apple M2 Max')?.kind).toBe('soc')
    expect(lookupDevice('Some future chip')).toBeUndefined()
  })

  it('sums bandwidth over devices, CPU DRAM without GPUs, unknown when any device is not found', () => {
    const four = capabilityOf({ cpuModel: 'x', backend: 'cuda', gpus: Array(4).fill({ name: 'NVIDIA L40S' }) })
    expect(four).toMatchObject({ memBwGBs: 864, memBwTotalGBs: 4 * 864, known: 1, memMiB: 4 * 48 * 1024 })
    expect(capabilityOf({ cpuModel: 'AMD EPYC 7B13 64-Core Processor', backend: 'cpu', gpus: [] }).memBwGBs).toBeCloseTo(204.8)
    expect(capabilityOf({ cpuModel: 'x', backend: 'cuda', gpus: [{ name: 'NVIDIA L4' }, { name: 'weird' }] }).known).toBe(0)
    expect(capabilityOf({ cpuModel: 'x', backend: 'cpu', gpus: [] })).toMatchObject({ known: 0, memBwGBs: 0 })
  })
})
