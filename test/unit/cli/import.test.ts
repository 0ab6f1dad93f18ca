import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hostFacts } from '../../../src/cli/commands/import.js'

describe('import host facts', () => {
  const dirs: string[] = []
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })
  function file (content: string): string {
    const d = mkdtempSync(join(tmpdir(), 'swarmtune-host-'))
    dirs.push(d)
    const p = join(d, 'host.json')
    writeFileSync(p, content)
    return p
  }

  it('reads --host-json and lets flags override it', () => {
    const p = file(JSON.stringify({ cpu: 'AMD EPYC 9654', cores: 96, ramMiB: 786432, gpus: [{ name: 'NVIDIA L40S', vramMiB: 46068 }] }))
    expect(hostFacts({ 'host-json': p })).toEqual({ cpuModel: 'AMD EPYC 9654', cores: 96, ramMiB: 786432, gpus: [{ name: 'NVIDIA L40S', vramMiB: 46068 }] })
    const f = hostFacts({ 'host-json': p, cores: '64', gpu: ['NVIDIA H100 80GB HBM3:81559', 'NVIDIA H100 80GB HBM3'] })
    expect(f.cores).toBe(64)
    expect(f.gpus).toEqual([{ name: 'NVIDIA H100 80GB HBM3', vramMiB: 81559 }, { name: 'NVIDIA H100 80GB HBM3', vramMiB: 0 }])
  })

  it('refuses bad facts with E_USAGE', () => {
    expect(() => hostFacts({ cores: '-3' })).toThrow(expect.objectContaining({ code: 'E_USAGE' }))
    expect(() => hostFacts({ 'host-json': file('[1]') })).toThrow(expect.objectContaining({ code: 'E_USAGE' }))
    expect(() => hostFacts({ 'host-json': file('{"gpus":[{"vramMiB":1}]}') })).toThrow(expect.objectContaining({ code: 'E_USAGE' }))
    expect(() => hostFacts({ 'host-json': join(tmpdir(), 'does-not-exist-swarmtune.json') })).toThrow(expect.objectContaining({ code: 'E_USAGE' }))
  })
})
