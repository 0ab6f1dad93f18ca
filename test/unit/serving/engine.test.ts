import { describe, expect, it } from 'vitest'
import { createServingEngine } from '../../../src/serving/engine.js'

describe('serving engine fingerprint', () => {
  const config = (publishHardware?: 'full' | 'capability') => ({ engine: { gpu: 'cpu' as const, threads: 1, defaultModel: 'tiny', models: [], publishHardware }, hardware: { pricePerHour: 0 } })

  it('recommend answers and serving records use the capability class when configured', () => {
    const cls = createServingEngine(config('capability')).hardwareForAdvice()
    expect(cls.cpuModel).toMatch(/^class:cpu/)
    expect(Number.isInteger(Math.log2(cls.cores))).toBe(true)
    const full = createServingEngine(config()).hardwareForAdvice()
    expect(full.cpuModel).not.toMatch(/^class:/)
    expect(full.id).not.toBe(cls.id)
  })
})
