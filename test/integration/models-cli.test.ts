import { describe, it, expect, afterAll } from 'vitest'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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

  it('adds a GGUF to a config file the daemon reads, and refuses a missing file, a non-GGUF and a taken name', async () => {
    const dataDir = join(root, 'data-add')
    const probe = await cli(['models', 'probe', 'tiny', '--data-dir', dataDir, '--json'])
    const [tiny] = JSON.parse(probe.stdout) as Array<{ path: string }>
    const confDir = join(root, 'conf-add')
    mkdirSync(join(confDir, 'models'), { recursive: true })
    copyFileSync(tiny.path, join(confDir, 'models', 'own.gguf'))
    writeFileSync(join(confDir, 'models', 'notes.gguf'), 'not a model at all')
    const conf = join(confDir, 'swarmtune.json')
    writeFileSync(conf, JSON.stringify({ dataDir, api: { port: 0 } }))

    // PATH as typed in the shell: relative to the current directory (root), written relative to the config's folder
    const added = await cli(['models', 'add', 'own', join('conf-add', 'models', 'own.gguf'), '--config', conf, '--default', '--json'])
    expect(added.stderr).toBe('')
    expect(added.code).toBe(0)
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'own', architecture: 'llama', defaultModel: true, resolvedPath: join(confDir, 'models', 'own.gguf') })
    const written = JSON.parse(readFileSync(conf, 'utf8'))
    expect(written.api).toEqual({ port: 0 })
    expect(written.engine).toEqual({ models: [{ name: 'own', path: './models/own.gguf' }], defaultModel: 'own' })
    const list = await cli(['models', 'list', '--config', conf, '--json'])
    expect(JSON.parse(list.stdout).find((r: { name: string }) => r.name === 'own')).toMatchObject({ exists: true, source: 'config', path: join(confDir, 'models', 'own.gguf') })

    const dup = await cli(['models', 'add', 'own', join(confDir, 'models', 'own.gguf'), '--config', conf])
    expect(dup.code).toBe(1)
    expect(dup.stderr).toContain('[E_MODEL_EXISTS]')
    const missing = await cli(['models', 'add', 'other', join(confDir, 'models', 'nope.gguf'), '--config', conf, '--json'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('[E_MODEL_NOT_FOUND]')
    const notGguf = await cli(['models', 'add', 'notes', join(confDir, 'models', 'notes.gguf'), '--config', conf])
    expect(notGguf.code).toBe(1)
    expect(notGguf.stderr).toContain('[E_MODEL_NOT_GGUF]')
    const noConfig = await cli(['models', 'add', 'x', join(confDir, 'models', 'own.gguf')])
    expect(noConfig.stderr).toContain('[E_USAGE]')
    // nothing of the failed adds reached the file
    expect(JSON.parse(readFileSync(conf, 'utf8')).engine.models).toHaveLength(1)
  }, 120_000)
})
