import { describe, it, expect, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnDaemon, type DaemonProcess } from '../../src/testbed/processes.js'
import { cliPath } from '../../src/util/paths.js'
import { waitFor } from '../../src/util/wait.js'

/*
 * Issue #18: `kill -9` while a model file is being generated leaves `<model>.gguf.tmp-<pid>-<ms>`
 * behind; the next daemon start on that data dir removes it and says so on stderr. Real CLI.
 */
const root = mkdtempSync(join(tmpdir(), 'swarmtune-model-temps-'))
const daemons: DaemonProcess[] = []
afterAll(async () => {
  await Promise.all(daemons.map(async d => { await d.stop() }))
  rmSync(root, { recursive: true, force: true })
})

const temps = (dir: string): string[] => existsSync(dir) ? readdirSync(dir).filter(n => n.includes('.gguf.tmp-')) : []

describe('model temp files after kill -9 (issue #18)', () => {
  it('the next start removes what the killed writer left', async () => {
    const dataDir = join(root, 'data')
    const models = join(dataDir, 'models')
    // `models probe small` writes the small model's files (tens of MB): killed once a temp file exists
    const writer = spawn(process.execPath, [cliPath(), 'models', 'probe', 'small', '--data-dir', dataDir, '--json'], { stdio: 'ignore' })
    const exited = new Promise(resolve => { writer.once('exit', resolve) })
    try {
      await waitFor('a model temp file', async () => temps(models).length > 0 ? true : undefined, 60_000, 5)
    } finally {
      writer.kill('SIGKILL')
    }
    await exited
    const left = temps(models)
    expect(left.length).toBeGreaterThan(0)

    const d = await spawnDaemon({ dataDir, port: 0, apiPort: 0 })
    daemons.push(d)
    expect(temps(models)).toEqual([])
    // stderr and the start line (stdout) come on separate pipes: wait for the line
    const line = await waitFor('the cleanup line', () => d.stderr().split('\n').find(l => l.includes('stale model temp file')), 10_000, 20)
    expect(line).toContain(`removed ${left.length} stale model temp file`)
  }, 120_000)
})
