import { describe, it, expect, afterEach } from 'vitest'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { removeStaleModelTemps } from '../../../src/engine/models.js'

/* Issue #18: stale `*.gguf.tmp-<pid>-<ms>` files of killed writers are removed on start, nothing else. */
let root: string | undefined
afterEach(() => { if (root != null) rmSync(root, { recursive: true, force: true }) })

const DEAD = 999_991
const LIVE = 999_992
const isAlive = (pid: number): boolean => pid === LIVE

function file (dir: string, name: string, ageMs: number, bytes = 10): void {
  const p = join(dir, name)
  writeFileSync(p, Buffer.alloc(bytes))
  const t = (Date.now() - ageMs) / 1000
  utimesSync(p, t, t)
}

describe('removeStaleModelTemps', () => {
  it('removes old temp files of dead writers and keeps live writers, fresh files and everything else', async () => {
    root = mkdtempSync(join(tmpdir(), 'swarmtune-temps-'))
    const dir = join(root, 'models')
    mkdirSync(dir)
    const startedAt = Date.now() - 60_000
    file(dir, `small-g1-f16.gguf.tmp-${DEAD}-1700000000000`, 120_000, 1000)
    file(dir, `tiny-g1-f32.gguf.tmp-${process.pid}-1700000000000`, 120_000, 24) // our pid, from before our start: a reused pid
    file(dir, `tiny-g1-q8_0.gguf.tmp-${LIVE}-1700000000000`, 120_000) // a writer still running
    file(dir, `draft-g1-f16.gguf.tmp-${DEAD}-1700000000001`, 1000) // modified after our start
    file(dir, 'tiny-g1-f32.gguf', 120_000) // a finished model
    file(dir, 'notes.tmp-1-2', 120_000) // not ours
    file(dir, `mine.gguf.tmp-${DEAD}`, 120_000) // not our pattern
    const r = await removeStaleModelTemps(root, { startedAt, isAlive })
    expect(r).toEqual({ removed: 2, bytes: 1024, kept: 2 })
    expect(readdirSync(dir).sort()).toEqual([
      `draft-g1-f16.gguf.tmp-${DEAD}-1700000000001`,
      `mine.gguf.tmp-${DEAD}`,
      'notes.tmp-1-2',
      'tiny-g1-f32.gguf',
      `tiny-g1-q8_0.gguf.tmp-${LIVE}-1700000000000`
    ])
  })

  it('is a no-op without a models folder', async () => {
    root = mkdtempSync(join(tmpdir(), 'swarmtune-temps-'))
    expect(await removeStaleModelTemps(root)).toEqual({ removed: 0, bytes: 0, kept: 0 })
  })
})
