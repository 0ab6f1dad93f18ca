import { describe, it, expect, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { cliPath } from '../../src/util/paths.js'

/* Issue #20: `swarmtune models` through the real CLI; a config's relative model path. Build first. */
const run = promisify(execFile)
const root = mkdtempSync(join(tmpdir(), 'swarmtune-models-'))
afterAll(() => { rmSync(root, { recursive: true, force: true }) })

async function cli (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await run(process.execPath, [cliPath(), ...args], { cwd: root, timeout: 60_000, env: { ...process.env, XDG_DATA_HOME: join(root, 'xdg') } })
    .then(r => ({ code: 0, stdout: r.stdout, stderr: r.stderr }), (e: { code: number, stdout: string, stderr: string }) => e)
}

describe('swarmtune models', () => {
  it('probes a built-in model, then lists a configured one by a path relative to its config file', async () => {
    const dataDir = join(root, 'data')
    const probe = await cli(['models', 'probe', 'tiny', '--data-dir', dataDir, '--json'])
    expect(probe.code).toBe(0)
    const [tiny] = JSON.parse(probe.stdout)
    expect(tiny).toMatchObject({ name: 'tiny', source: 'built-in', exists: true, architecture: 'llama', quantization: 'F32' })
    expect(tiny.bytes).toBeGreaterThan(0)

    const confDir = join(root, 'conf')
    mkdirSync(join(confDir, 'models'), { recursive: true })
    copyFileSync(tiny.path, join(confDir, 'models', 'mine.gguf'))
    const conf = join(confDir, 'swarmtune.json')
    writeFileSync(conf, JSON.stringify({ dataDir, engine: { models: [{ name: 'mine', path: './models/mine.gguf' }, { name: 'gone', path: './models/gone.gguf' }] } }))
    const list = await cli(['models', '--config', conf, '--json'])
    expect(list.code).toBe(0)
    const rows = JSON.parse(list.stdout) as Array<{ name: string, path: string, exists: boolean, architecture?: string, cannot: string[] }>
    const mine = rows.find(r => r.name === 'mine')!
    expect(mine).toMatchObject({ path: join(confDir, 'models', 'mine.gguf'), exists: true, architecture: 'llama' })
    expect(mine.cannot.join(' ')).toContain('draftPath')
    expect(rows.find(r => r.name === 'gone')?.exists).toBe(false)
    expect(rows.map(r => r.name)).toContain('small')

    const gone = await cli(['models', 'probe', 'gone', '--config', conf])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toContain('[E_MODEL_NOT_FOUND]')
    const bad = await cli(['models', 'frobnicate'])
    expect(bad.stderr).toContain('[E_USAGE]')
  }, 120_000)
})
