import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path'
import { loadConfig } from '../node/config.js'
import { EMBEDDED_MODELS, describeGguf } from '../engine/models.js'
import { SwarmtuneError } from '../util/errors.js'

/**
 * `swarmtune models add NAME PATH --config F`: the daemon reads its models from the config file
 * given with `start --config F` (there is no config file inside the data dir), so that is the file
 * written. PATH is what the user typed, relative to the current directory; it is stored relative
 * to F's folder when it lies inside it (F resolves relative paths against its own folder, so the
 * pair can move together), else absolute. The file is checked as the daemon would load it before
 * it replaces the old one.
 */
export interface AddModelRequest {
  configFile: string
  name: string
  path: string
  q8Path?: string
  draftPath?: string
  makeDefault?: boolean
  cwd?: string
}

export interface AddedModel {
  name: string
  configFile: string
  /** as written into the config file */
  entry: { name: string, path: string, q8Path?: string, draftPath?: string }
  /** absolute, as the daemon will open it */
  resolvedPath: string
  architecture: string
  quantization: string
  params: number
  defaultModel: boolean
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/

type Json = Record<string, unknown>

function readConfigFile (file: string): Json {
  if (!existsSync(file)) return {}
  let value: unknown
  try {
    value = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new SwarmtuneError('E_CONFIG', `config file ${file} is not valid JSON: ${(err as Error).message}`)
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new SwarmtuneError('E_CONFIG', `config file ${file} must hold a JSON object`)
  return value as Json
}

/** How the config file names `abs`: relative to its folder when inside it, else absolute. */
function asWritten (abs: string, fileDir: string): string {
  const rel = relative(fileDir, abs)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? `.${sep}${rel}` : abs
}

/** Validates one GGUF (E_MODEL_NOT_FOUND, E_MODEL_NOT_GGUF, E_MODEL_TRUNCATED from the reader). */
function check (abs: string, name: string): ReturnType<typeof describeGguf> {
  return describeGguf(abs, name)
}

export function addModel (req: AddModelRequest): AddedModel {
  const cwd = req.cwd ?? process.cwd()
  const file = resolve(cwd, req.configFile)
  const fileDir = dirname(file)
  if (!NAME.test(req.name)) throw new SwarmtuneError('E_USAGE', `model name "${req.name}" must be 1-128 letters, digits, . _ : - (starting with a letter or digit)`)
  const conf = readConfigFile(file)
  const engine = (conf.engine ?? {}) as Json
  if (typeof engine !== 'object' || Array.isArray(engine)) throw new SwarmtuneError('E_CONFIG', `config file ${file}: engine must be an object`)
  const models = (engine.models ?? []) as Array<{ name?: unknown }>
  if (!Array.isArray(models)) throw new SwarmtuneError('E_CONFIG', `config file ${file}: engine.models must be an array`)
  if (models.some(m => m?.name === req.name)) throw new SwarmtuneError('E_MODEL_EXISTS', `model "${req.name}" is already in ${file}; remove it there first or pick another name`)
  if (req.name in EMBEDDED_MODELS) throw new SwarmtuneError('E_MODEL_EXISTS', `"${req.name}" is a built-in model's name; pick another name`)

  const abs = resolve(cwd, req.path)
  const d = check(abs, req.name)
  const entry: AddedModel['entry'] = { name: req.name, path: asWritten(abs, fileDir) }
  if (req.q8Path != null) { const p = resolve(cwd, req.q8Path); check(p, `${req.name} q8`); entry.q8Path = asWritten(p, fileDir) }
  if (req.draftPath != null) { const p = resolve(cwd, req.draftPath); check(p, `${req.name} draft`); entry.draftPath = asWritten(p, fileDir) }

  const next: Json = { ...conf, engine: { ...engine, models: [...models, entry], ...(req.makeDefault === true ? { defaultModel: req.name } : {}) } }
  // write beside the file, load it as the daemon would (schema, path resolution), then replace
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(next, null, 2) + '\n')
  try {
    const loaded = loadConfig({ file: tmp })
    const m = loaded.engine.models.find(x => x.name === req.name)
    if (m == null || resolve(m.path) !== abs) throw new SwarmtuneError('E_INTERNAL', `model "${req.name}" would resolve to ${m?.path ?? 'nothing'}, not ${abs}`)
    renameSync(tmp, file)
    return {
      name: req.name,
      configFile: file,
      entry,
      resolvedPath: abs,
      architecture: d.architecture,
      quantization: d.fileType,
      params: d.params,
      defaultModel: loaded.engine.defaultModel === req.name
    }
  } finally {
    rmSync(tmp, { force: true })
  }
}
