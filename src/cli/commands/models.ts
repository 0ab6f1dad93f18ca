import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseFlags, printJson } from '../args.js'
import { loadConfig } from '../../node/config.js'
import { EMBEDDED_MODELS, describeGguf, embeddedFileName, resolveModel } from '../../engine/models.js'
import { SwarmtuneError } from '../../util/errors.js'
import { addModel } from '../models-add.js'
import type { ModelSpec } from '../../engine/types.js'
import { DATA_DIR_HELP } from '../../node/data-dir.js'

const HELP = `usage: swarmtune models [list | probe NAME | add NAME PATH] [--config F] [--data-dir D] [--json]
  list (default)  the configured models (engine.models) and the built-in generated ones: file,
                  size, architecture, quantization, whether q8Path / draftPath are there
  probe NAME      resolve NAME as the daemon would (writes a built-in model's files on first use)
                  and read its GGUF metadata; a bad file fails with its E_MODEL_* code
  add NAME PATH --config F [--q8 PATH] [--draft PATH] [--default]
                  check that PATH is a GGUF model and add it to engine.models of the config file F
                  (created when missing), the file the daemon is started with (start --config F).
                  PATH is relative to the current directory; it is written relative to F's folder
                  when inside it, else absolute. Errors: E_MODEL_NOT_FOUND, E_MODEL_NOT_GGUF,
                  E_MODEL_TRUNCATED, E_MODEL_EXISTS (name taken); a running daemon reads it on restart
Built-in models (tiny, small and their drafts) are random-weight test models: they answer with
gibberish by design. Select a model with --model (bench, infer), the OpenAI "model" field, or
engine.defaultModel.
${DATA_DIR_HELP}`

interface ModelRow {
  name: string
  source: 'config' | 'built-in'
  path: string
  exists: boolean
  bytes?: number
  architecture?: string
  quantization?: string
  params?: number
  q8Path?: string
  draftPath?: string
  /** methods this model cannot run, and why: cheap to tell from the files alone */
  cannot: string[]
  error?: string
}

function row (name: string, source: ModelRow['source'], spec: ModelSpec): ModelRow {
  const exists = existsSync(spec.path)
  const r: ModelRow = { name, source, path: spec.path, exists, cannot: [] }
  if (spec.q8Path != null) r.q8Path = spec.q8Path
  if (spec.draftPath != null) r.draftPath = spec.draftPath
  if (spec.q8Path == null) r.cannot.push('8-bit weight methods (no q8Path)')
  if (spec.draftPath == null) r.cannot.push('draft-model speculative decoding (no draftPath)')
  if (!exists) return r
  r.bytes = statSync(spec.path).size
  try {
    const d = describeGguf(spec.path, name)
    Object.assign(r, { architecture: d.architecture, quantization: d.fileType, params: d.params })
  } catch (err) {
    r.error = `${(err as Error).message}${(err as SwarmtuneError).code != null ? ` [${(err as SwarmtuneError).code}]` : ''}`
  }
  return r
}

/** Without writing anything: a built-in model's files are shown where they are (or will be). */
function listRows (config: ReturnType<typeof loadConfig>): ModelRow[] {
  const rows = config.engine.models.map(m => row(m.name, 'config', m))
  const dir = join(config.dataDir, 'models')
  for (const [name, e] of Object.entries(EMBEDDED_MODELS)) {
    if (rows.some(r => r.name === name)) continue
    rows.push(row(name, 'built-in', {
      name,
      path: join(dir, embeddedFileName(e.main)),
      ...(e.q8 != null ? { q8Path: join(dir, embeddedFileName(e.q8)) } : {}),
      ...(e.draft != null ? { draftPath: join(dir, embeddedFileName(EMBEDDED_MODELS[e.draft].main)) } : {})
    }))
  }
  return rows
}

function mib (n: number | undefined): string {
  return n == null ? '-' : `${(n / 1024 / 1024).toFixed(1)} MiB`
}

function human (rows: ModelRow[], defaultModel: string): string {
  return rows.map(r => [
    `${r.name}${r.name === defaultModel ? ' (default)' : ''}  [${r.source}]`,
    `  file          ${r.path}${r.exists ? '' : r.source === 'built-in' ? ' (generated on first use)' : ' (MISSING)'}`,
    ...(r.exists ? [`  size          ${mib(r.bytes)}`, `  architecture  ${r.architecture ?? '?'}`, `  quantization  ${r.quantization ?? '?'}`] : []),
    ...(r.error != null ? [`  error         ${r.error}`] : []),
    `  q8Path        ${r.q8Path ?? '-'}`,
    `  draftPath     ${r.draftPath ?? '-'}`,
    ...(r.cannot.length > 0 ? [`  cannot run    ${r.cannot.join('; ')}`] : [])
  ].join('\n')).join('\n\n') + '\n'
}

function add (name: string | undefined, rest: string[], f: { config?: string, q8?: string, draft?: string, default?: boolean, json?: boolean, 'data-dir'?: string }): number {
  const [path, ...extra] = rest
  if (name == null || path == null || extra.length > 0) throw new SwarmtuneError('E_USAGE', 'usage: swarmtune models add NAME PATH --config F [--q8 PATH] [--draft PATH] [--default]')
  if (f.config == null) throw new SwarmtuneError('E_USAGE', 'swarmtune models add needs --config F: the config file the daemon is started with (swarmtune start --config F); it is created when missing')
  if (f['data-dir'] != null) throw new SwarmtuneError('E_USAGE', 'swarmtune models add writes the config file (--config), not the data dir')
  const added = addModel({ configFile: f.config, name, path, q8Path: f.q8, draftPath: f.draft, makeDefault: f.default })
  if (f.json === true) printJson(added)
  else process.stdout.write(`added model "${added.name}" (${added.architecture}, ${added.quantization}, ${added.params} parameters) to ${added.configFile} as ${added.entry.path}${added.defaultModel ? ' (default model)' : ''}; restart the daemon with --config ${added.configFile} to use it\n`)
  return 0
}

export async function run (argv: string[]): Promise<number> {
  const { values: f, positionals } = parseFlags(argv, {
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    json: { type: 'boolean' },
    q8: { type: 'string' },
    draft: { type: 'string' },
    default: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' }
  }, true)
  if (f.help === true) { process.stdout.write(HELP); return 0 }
  const [sub = 'list', name, ...extra] = positionals
  if (sub === 'add') return add(name, extra, f)
  if (extra.length > 0 || !['list', 'probe'].includes(sub)) throw new SwarmtuneError('E_USAGE', `usage: swarmtune models [list | probe NAME] [--json] (got "${positionals.join(' ')}")`)
  const config = loadConfig({ file: f.config, overrides: f['data-dir'] != null ? { dataDir: f['data-dir'] } : undefined })
  let rows: ModelRow[]
  if (sub === 'probe') {
    if (name == null) throw new SwarmtuneError('E_USAGE', 'swarmtune models probe NAME: which model?')
    const spec = await resolveModel(config, name, config.dataDir)
    const r = row(name, config.engine.models.some(m => m.name === name) ? 'config' : 'built-in', spec)
    if (!r.exists) throw new SwarmtuneError('E_MODEL_NOT_FOUND', `model "${name}": no file at ${r.path}`)
    if (r.error != null) throw new SwarmtuneError('E_MODEL_INVALID', `model "${name}": ${r.error}`)
    rows = [r]
  } else {
    if (name != null) throw new SwarmtuneError('E_USAGE', 'swarmtune models list takes no name (use probe NAME)')
    rows = listRows(config)
  }
  if (f.json === true) printJson(rows)
  else process.stdout.write(human(rows, config.engine.defaultModel))
  return 0
}
