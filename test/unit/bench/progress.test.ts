import { describe, it, expect } from 'vitest'
import { createProgress, etaMs, formatDuration } from '../../../src/bench/progress.js'
import { hardwareFingerprint, hardwareId, hardwareLabel } from '../../../src/engine/hardware.js'

function sink (isTTY: boolean) {
  const out: string[] = []
  return { out, stream: { isTTY, columns: 100, write: (s: string) => { out.push(s); return true } } }
}

describe('progress', () => {
  it('formats durations and estimates the remaining time from the mean step time', () => {
    expect(formatDuration(4_400)).toBe('4s')
    expect(formatDuration(125_000)).toBe('2m05s')
    expect(formatDuration(3_900_000)).toBe('1h05m')
    expect(formatDuration(NaN)).toBe('?')
    expect(etaMs(10_000, 2, 10)).toBe(40_000)
    expect(etaMs(10_000, 0, 10)).toBeNaN()
  })

  it('prints one plain line per step when not on a TTY', () => {
    let t = 0
    const s = sink(false)
    const p = createProgress({ total: 4, title: 'bench', stream: s.stream, now: () => t })
    t = 1000; p.tick('a')
    t = 2000; p.tick('b')
    p.note('skipped x')
    p.done()
    expect(s.out).toEqual(['bench 1/4 a elapsed 1s eta 3s\n', 'bench 2/4 b elapsed 2s eta 2s\n', 'skipped x\n'])
  })

  it('redraws a bar in place on a TTY and ends the line when done', () => {
    let t = 0
    const s = sink(true)
    const p = createProgress({ total: 2, stream: s.stream, now: () => t })
    t = 500; p.tick('first')
    expect(s.out[0]).toMatch(/^\r\x1b\[2K\[#+-+\]  50% 1\/2 first elapsed 1s eta 1s$/)
    p.note('kept')
    expect(s.out.slice(1, 3)).toEqual(['\r\x1b[2K', 'kept\n']) // clear, message, then the bar again
    t = 1000; p.tick('second', 1)
    expect(s.out[s.out.length - 1]).toContain('100% 2/2')
    p.done()
    expect(s.out[s.out.length - 1]).toBe('\n')
  })

  it('is silent when asked', () => {
    const s = sink(false)
    const p = createProgress({ total: 1, stream: s.stream, silent: true })
    p.tick('x'); p.note('y'); p.done()
    expect(s.out).toEqual([])
  })
})

describe('hardware fingerprint', () => {
  const probe = { cpuModel: 'AMD EPYC', cores: 2, ramMiB: 24105, os: 'linux-x64' }
  it('has an id that ignores threads and price but not the machine', () => {
    const a = hardwareFingerprint({ backend: 'cpu', gpus: [], threads: 1 }, probe)
    const b = hardwareFingerprint({ backend: 'cpu', gpus: [], threads: 2, pricePerHour: 0.5 }, probe)
    expect(a.id).toBe(b.id)
    expect(a.id).toMatch(/^[0-9a-f]{16}$/)
    expect(b).toMatchObject({ threads: 2, pricePerHour: 0.5, cores: 2, ramMiB: 24105, cpuModel: 'AMD EPYC', os: 'linux-x64' })
    expect(hardwareFingerprint({ backend: 'cuda', gpus: [{ name: 'H100', vramMiB: 81559 }], threads: 1 }, probe).id).not.toBe(a.id)
    expect(hardwareFingerprint({ backend: 'cpu', gpus: [], threads: 1 }, { ...probe, cores: 4 }).id).not.toBe(a.id)
    expect(hardwareId({ cpuModel: 'AMD EPYC', cores: 2, ramMiB: 24105, gpus: [], backend: 'cpu', os: 'linux-x64' })).toBe(a.id)
  })
  it('reads the real machine', () => {
    const fp = hardwareFingerprint({ backend: 'cpu', gpus: [], threads: 1 })
    expect(fp.cores).toBeGreaterThanOrEqual(1)
    expect(fp.ramMiB).toBeGreaterThan(100)
    expect(fp.cpuModel.length).toBeGreaterThan(0)
  })
  it('labels machines for file names', () => {
    expect(hardwareLabel({ cpuModel: 'AMD EPYC', cores: 2, backend: 'cpu', gpus: [] })).toBe('amd-epyc-2c-cpu')
    expect(hardwareLabel({ cpuModel: 'Intel(R) Xeon(R) Platinum 8480+ @ 2.0GHz', cores: 16, backend: 'cuda', gpus: [{ name: 'NVIDIA H100 80GB HBM3', vramMiB: 1 }] }))
      .toBe('intel-xeon-platinum-8480-16c-cuda-nvidia-h100-80gb-hbm3')
  })
})
