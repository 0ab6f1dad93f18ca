import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultDataDir } from '../../../src/node/data-dir.js'
import { loadConfig } from '../../../src/node/config.js'
import { apiToken } from '../../../src/node/api-client.js'

let dir: string
let cwd: string
let home: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'swarmtune-datadir-'))
  cwd = join(dir, 'clone')
  home = join(dir, 'home')
  mkdirSync(cwd)
  mkdirSync(home)
})
afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

describe('default data dir', () => {
  it('is $XDG_DATA_HOME/swarmtune when that is absolute, else ~/.local/share/swarmtune', () => {
    expect(defaultDataDir({ env: { XDG_DATA_HOME: join(dir, 'xdg') }, cwd, home })).toEqual({ dir: join(dir, 'xdg', 'swarmtune'), legacy: false })
    // a relative or empty XDG_DATA_HOME is invalid by the XDG spec: ignored
    expect(defaultDataDir({ env: { XDG_DATA_HOME: 'rel/data' }, cwd, home }).dir).toBe(join(home, '.local', 'share', 'swarmtune'))
    expect(defaultDataDir({ env: { XDG_DATA_HOME: '' }, cwd, home }).dir).toBe(join(home, '.local', 'share', 'swarmtune'))
    expect(defaultDataDir({ env: { HOME: home }, cwd }).dir).toBe(join(home, '.local', 'share', 'swarmtune'))
  })

  it('keeps an existing ./.swarmtune that holds identity.key, and only then', () => {
    mkdirSync(join(cwd, '.swarmtune'))
    expect(defaultDataDir({ env: {}, cwd, home }).legacy).toBe(false)
    writeFileSync(join(cwd, '.swarmtune', 'identity.key'), 'x')
    expect(defaultDataDir({ env: { XDG_DATA_HOME: join(dir, 'xdg') }, cwd, home })).toEqual({ dir: join(cwd, '.swarmtune'), legacy: true })
  })

  it('loadConfig fills it in when nothing names one, tells about a kept ./.swarmtune, and lets file/env/flag win', () => {
    const told: string[] = []
    const env = { XDG_DATA_HOME: join(dir, 'xdg') }
    expect(loadConfig({ env, cwd, home, onLegacyDataDir: d => told.push(d) }).dataDir).toBe(join(dir, 'xdg', 'swarmtune'))
    expect(told).toEqual([])
    mkdirSync(join(cwd, '.swarmtune'))
    writeFileSync(join(cwd, '.swarmtune', 'identity.key'), 'x')
    expect(loadConfig({ env, cwd, home, onLegacyDataDir: d => told.push(d) }).dataDir).toBe(join(cwd, '.swarmtune'))
    expect(told).toEqual([join(cwd, '.swarmtune')])
    expect(loadConfig({ env: { ...env, SWARMTUNE_DATA_DIR: 'mine' }, cwd, home, onLegacyDataDir: d => told.push(d) }).dataDir).toBe(join(cwd, 'mine'))
    expect(loadConfig({ env, cwd, home, overrides: { dataDir: '/abs/d' } }).dataDir).toBe('/abs/d')
    expect(told).toHaveLength(1)
  })

  it('the CLI finds the API token in the default data dir', () => {
    const xdg = join(dir, 'xdg')
    mkdirSync(join(xdg, 'swarmtune'), { recursive: true })
    writeFileSync(join(xdg, 'swarmtune', 'api-token'), 'tok-default\n', { mode: 0o600 })
    expect(apiToken({ XDG_DATA_HOME: xdg, HOME: home })).toBe('tok-default')
    mkdirSync(join(dir, 'other'))
    writeFileSync(join(dir, 'other', 'api-token'), 'tok-other\n', { mode: 0o600 })
    expect(apiToken({ XDG_DATA_HOME: xdg, SWARMTUNE_DATA_DIR: join(dir, 'other') })).toBe('tok-other')
  })
})

describe('the test suite', () => {
  it('runs with XDG_DATA_HOME in a temp dir, so a command without --data-dir stays out of the real home', () => {
    expect(process.env.XDG_DATA_HOME?.startsWith(join(tmpdir(), 'swarmtune-xdg-'))).toBe(true)
  })
})

describe('relative model paths', () => {
  it('resolve against the config file\'s folder, env ones against the current directory, an old data-dir path when only it exists', () => {
    const conf = join(dir, 'conf')
    mkdirSync(conf)
    const file = join(conf, 'c.json')
    writeFileSync(file, JSON.stringify({ dataDir: join(dir, 'data'), engine: { models: [{ name: 'm', path: './models/x.gguf', draftPath: '/abs/d.gguf' }] } }))
    const m = loadConfig({ file, env: {}, cwd, home }).engine.models[0]
    expect(m).toEqual({ name: 'm', path: join(conf, 'models', 'x.gguf'), draftPath: '/abs/d.gguf' })
    const fromEnv = loadConfig({ env: { SWARMTUNE__engine__models: JSON.stringify([{ name: 'e', path: 'y.gguf' }]) }, cwd, home }).engine.models[0]
    expect(fromEnv.path).toBe(join(cwd, 'y.gguf'))
    mkdirSync(join(dir, 'data', 'models'), { recursive: true })
    writeFileSync(join(dir, 'data', 'models', 'x.gguf'), '')
    expect(loadConfig({ file, env: {}, cwd, home }).engine.models[0].path).toBe(join(dir, 'data', 'models', 'x.gguf'))
  })
})
