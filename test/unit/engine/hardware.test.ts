import { describe, expect, it } from 'vitest'
import { capabilityClass, deviceClassName, hardwareFingerprint, log2Bucket, type SystemProbe } from '../../../src/engine/hardware.js'
import { capabilityOf, deviceSpecTable, lookupDevice } from '../../../src/engine/device-specs.js'
import { FEATURE_NAMES, featureVector } from '../../../src/meta/features.js'
import { hostKeyOf } from '../../../src/meta/dataset.js'
import { synthBodies, validateBody } from '../../../src/records/index.js'
import type { HardwareFingerprint } from '../../../src/records/types.js'

const h100Box: SystemProbe = { cpuModel: 'AMD EPYC 9654 96-Core Processor', cores: 192, ramMiB: 1_000_000, os: 'linux-x64' }
const cpuBox: SystemProbe = { cpuModel: 'AMD EPYC 7B13 64-Core Processor', cores: 6, ramMiB: 7_900, os: 'linux-x64' }
const h100 = { name: 'NVIDIA H100 80GB HBM3', vramMiB: 81_559 }

function fp (probe: SystemProbe, gpus: HardwareFingerprint['gpus'], backend: HardwareFingerprint['backend'], publish?: 'full' | 'capability'): HardwareFingerprint {
  return hardwareFingerprint({ backend, gpus, threads: 4, pricePerHour: 2.5, publish }, probe)
}

/** Every name-like value of a fingerprint: what must not identify the machine. */
const names = (hw: HardwareFingerprint): string => JSON.stringify([hw.cpuModel, hw.gpus.map(g => g.name)])

describe('log2Bucket', () => {
  it('rounds to the nearest power of two on a log scale; 0 and nonsense are 0', () => {
    expect([3350, 2039, 989, 312, 204.8, 460.8, 6, 1, 0.3].map(log2Bucket)).toEqual([4096, 2048, 1024, 256, 256, 512, 8, 1, 0.25])
    expect([0, -1, Number.NaN, Infinity, 1e-9].map(log2Bucket)).toEqual([0, 0, 0, 0, 0])
  })
})

describe('capability class (engine.publishHardware = "capability")', () => {
  it('names no CPU model, GPU name or exact size; keeps backend, device count, threads, price, os', () => {
    const full = fp(h100Box, [h100, h100], 'cuda')
    const cls = fp(h100Box, [h100, h100], 'cuda', 'capability')
    expect(names(cls)).not.toMatch(/epyc|amd|nvidia|h100|hbm/i)
    expect(cls).toMatchObject({
      cpuModel: 'class:cpu-bw512-tf0-mem0',
      cores: 256,
      ramMiB: 1024 * 1024,
      gpus: [{ name: 'class:gpu-bw4096-tf1024-mem64', vramMiB: 65_536 }, { name: 'class:gpu-bw4096-tf1024-mem64', vramMiB: 65_536 }],
      backend: 'cuda',
      os: 'linux-x64',
      threads: 4,
      pricePerHour: 2.5
    })
    expect(cls.id).not.toBe(full.id)
    expect(fp(h100Box, [h100, h100], 'cuda', 'full')).toEqual(full)
  })

  it('is idempotent, and machines of one class share one id and one host', () => {
    const cls = fp(h100Box, [h100], 'cuda', 'capability')
    expect(capabilityClass(cls)).toEqual(cls)
    const other = fp({ ...h100Box, cpuModel: 'AMD EPYC 9554 64-Core Processor', cores: 200, ramMiB: 1_400_000 }, [{ name: 'NVIDIA H100 SXM5 80GB', vramMiB: 80_000 }], 'cuda', 'capability')
    expect(other.id).toBe(cls.id)
    expect(hostKeyOf(other)).toBe(hostKeyOf(cls))
    // a different class is a different host for the hardware split
    expect(hostKeyOf(fp(cpuBox, [], 'cpu', 'capability'))).not.toBe(hostKeyOf(cls))
  })

  it('a device the spec table does not know stays unknown: no figures are made up', () => {
    expect(deviceClassName('Some future chip', 'gpu')).toBe('class:gpu')
    expect(lookupDevice('class:gpu')).toBeUndefined()
    const cls = fp({ ...cpuBox, cpuModel: 'Weird CPU 1234' }, [{ name: 'Weird GPU', vramMiB: 12_000 }], 'vulkan', 'capability')
    expect(cls.cpuModel).toBe('class:cpu')
    expect(cls.gpus).toEqual([{ name: 'class:gpu', vramMiB: 16_384 }])
    expect(capabilityOf(cls).known).toBe(0)
    // malformed class names are unknown, never a crash
    for (const n of ['class:gpu-bwx-tf1-mem1', 'class:tpu-bw1-tf1-mem1', 'class:gpu-bw1e400-tf1-mem1']) expect(lookupDevice(n)).toBeUndefined()
  })

  it('no class name of any table row is mistaken for a device by a name lookup without the class branch (the previous release)', () => {
    // rows whose display name is not one of their own patterns (the Xeon generations) are left out
    for (const row of deviceSpecTable().filter(r => lookupDevice(r.name)?.name === r.name)) {
      const cls = deviceClassName(row.name, row.kind)
      expect(cls).toMatch(/^class:(gpu|accelerator|cpu|soc)-bw[0-9.]+-tf[0-9.]+-mem[0-9.]+$/)
      expect(lookupDevice(cls.replace(/^class:/, 'klass:'))).toBeUndefined()
      expect(lookupDevice(cls)?.memBwGBs).toBe(log2Bucket(row.memBwGBs))
    }
  })

  it('Apple SoCs keep their unified-memory class', () => {
    const cls = fp({ cpuModel: 'Apple M2 Max', cores: 12, ramMiB: 98_304, os: 'darwin-arm64' }, [{ name: 'Apple M2 Max', vramMiB: 73_000 }], 'metal', 'capability')
    expect(cls.gpus[0].name).toBe('class:soc-bw512-tf16-mem128')
    expect(capabilityOf(cls)).toMatchObject({ unified: 1, known: 1, memBwGBs: 512 })
  })

  it('a record with a class fingerprint is a valid v1 body (current peers accept it)', () => {
    const now = Date.now()
    const [unsigned] = synthBodies(1, 7, now)
    const hardware = fp(h100Box, [h100], 'cuda', 'capability')
    const body = validateBody({ ...unsigned, v: 1, author: '12D3KooWGa3dx7iok4ddiZchzDR2AocRw5heCktvUxqfdfTmvTuu', seq: 1, timestamp: now, hardware }, now)
    expect(body.hardware).toEqual(hardware)
  })

  it('features of a class record are the bucket values', () => {
    const hw = fp(h100Box, [h100, h100], 'cuda', 'capability')
    const task = {
      hardware: hw,
      model: { params: 1e9, layers: 16, embd: 2048, heads: 16, kvHeads: 4, weightBits: 16, ctx: 4096 },
      workload: { features: {} }
    }
    const row = featureVector(task, {})
    const col = (n: string): number => row[FEATURE_NAMES.indexOf(n)]
    expect(col('hw.memBwGBs')).toBe(log2Bucket(3350))
    expect(col('hw.memBwTotalGBs')).toBe(2 * log2Bucket(3350))
    expect(col('hw.fp16Tflops')).toBe(log2Bucket(989))
    expect(col('hw.specKnown')).toBe(1)
    expect(col('hw.vramMiB')).toBe(2 * 65_536)
    expect(col('hw.cores')).toBe(256)
    expect(col('hw.ramMiB')).toBe(1024 * 1024)
    expect(col('hw.gpus')).toBe(2)
    expect(col('hw.backend.cuda')).toBe(1)
    // CPU-only: the CPU's DRAM class
    const cpuRow = featureVector({ ...task, hardware: fp(cpuBox, [], 'cpu', 'capability') }, {})
    expect(cpuRow[FEATURE_NAMES.indexOf('hw.memBwGBs')]).toBe(log2Bucket(204.8))
    expect(cpuRow[FEATURE_NAMES.indexOf('hw.cores')]).toBe(8)
  })
})
