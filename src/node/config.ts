import { existsSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { SwarmtuneError } from '../util/errors.js'
import { packageRoot } from '../util/paths.js'
import { defaultDataDir } from './data-dir.js'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { BenchSettings } from '../bench/prepare.js'
import type { EngineConfig, ModelConfig } from '../engine/types.js'
import type { MetaConfig } from '../meta/service.js'
import type { GossipBudgetConfig, NetConfig } from '../net/types.js'
import type { OpenAiModelsConfig } from '../serving/types.js'
import type { TrustConfig } from '../trust/service.js'
import type { VoteConfig } from '../vote/service.js'

/**
 * Configuration: config/default.json, then an optional user file (--config), then SWARMTUNE_*
 * environment variables, then CLI flags. The merged result is checked against
 * config/schema.json; a bad field fails start-up with its path (E_CONFIG).
 */
export type { ModelConfig }

/**
 * The whole config, composed of the sections each service declares as its own (the service's
 * `XInit` takes its slice): net → src/net/types.ts, engine → src/engine/types.ts, bench →
 * src/bench/prepare.ts, meta → src/meta/service.ts, vote → src/vote/service.ts, trust →
 * src/trust/service.ts (+ the gossip budgets of src/net/types.ts).
 */
export interface SwarmtuneConfig {
  /** absent in config/default.json: loadConfig fills in the per-user default (src/node/data-dir.ts) */
  dataDir: string
  net: NetConfig
  /** allowHosts, allowOrigins, requireToken: who may drive the API (src/node/api-access.ts); optional for older configs */
  api: { host: string, port: number, allowHosts?: string[], allowOrigins?: string[], requireToken?: boolean }
  store: { maxRecords: number, writeBufferMb: number }
  hardware: { pricePerHour: number }
  engine: EngineConfig
  bench: BenchSettings
  meta: MetaConfig
  vote: VoteConfig
  /** model names of the OpenAI routes (src/serving/openai.ts); optional for older configs */
  openai?: OpenAiModelsConfig
  /** issue #7 (src/trust): optional so older config files and tests keep working */
  trust?: TrustConfig & GossipBudgetConfig
}

export class ConfigError extends SwarmtuneError {
  constructor (path: string, message: string) {
    super('E_CONFIG', `invalid config at ${path === '' ? '(root)' : path}: ${message}`)
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

function readJson (file: string): Json {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new SwarmtuneError('E_CONFIG', `cannot read config file ${file}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text) as Json
  } catch (err) {
    throw new SwarmtuneError('E_CONFIG', `config file ${file} is not valid JSON: ${(err as Error).message}`)
  }
}

/** ajv's error as the field's path (`net.listen[0]`) and a short message, as users read them. */
function pathOf (e: ErrorObject): string {
  return e.instancePath.split('/').slice(1).map(p => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => /^\d+$/.test(seg) ? `${acc}[${seg}]` : join2(acc, seg), '')
}

function describeError (e: ErrorObject): ConfigError {
  const path = pathOf(e)
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties': return new ConfigError(join2(path, String(p.additionalProperty)), 'unknown key')
    case 'required': return new ConfigError(join2(path, String(p.missingProperty)), 'is required')
    case 'enum': return new ConfigError(path, `must be one of ${(p.allowedValues as Json[]).map(v => JSON.stringify(v)).join(', ')}`)
    case 'type': {
      const t = String(p.type)
      const words: Record<string, string> = { object: 'an object', array: 'an array', string: 'a string', boolean: 'true or false', integer: 'an integer', number: 'a number' }
      return new ConfigError(path, `must be ${words[t] ?? t}`)
    }
    case 'minLength': return new ConfigError(path, `must have at least ${String(p.limit)} characters`)
    case 'pattern': return new ConfigError(path, `must match ${String(p.pattern)}`)
    default: return new ConfigError(path, e.message ?? 'is invalid')
  }
}

let validator: ValidateFunction | undefined

/** Check a merged config against config/schema.json (ajv); throws ConfigError naming the first bad path. */
export function checkConfig (value: unknown, schemaFile = join(packageRoot(), 'config', 'schema.json')): void {
  validator ??= new Ajv({ allErrors: false, strict: true }).compile(readJson(schemaFile) as object)
  if (validator(value)) return
  const errors = validator.errors ?? []
  // anyOf: ajv reports each branch's failure, then the anyOf itself: say the branches in one message
  const any = errors.find(e => e.keyword === 'anyOf')
  if (any != null) {
    const branches = errors.filter(e => e !== any && e.instancePath === any.instancePath).map(e => describeError(e).message.replace(/^invalid config at [^:]*: /, ''))
    throw new ConfigError(pathOf(any), branches.join(', or '))
  }
  throw describeError(errors[0])
}

function join2 (path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`
}

function isObject (v: unknown): v is Record<string, Json> {
  return v != null && typeof v === 'object' && !Array.isArray(v)
}

/** Deep merge: objects merge key by key, everything else (arrays included) replaces. */
export function deepMerge (base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over
  const out: Record<string, Json> = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v
  return out
}

function setPath (target: Record<string, Json>, path: string[], value: Json): void {
  let cur = target
  for (const p of path.slice(0, -1)) {
    if (!isObject(cur[p])) cur[p] = {}
    cur = cur[p] as Record<string, Json>
  }
  cur[path[path.length - 1]] = value
}

function parseEnvValue (raw: string): Json {
  try { return JSON.parse(raw) as Json } catch { return raw }
}

function csv (raw: string): string[] {
  return raw.split(',').map(s => s.trim()).filter(s => s.length > 0)
}

/**
 * Environment overrides. Shortcuts for the common ones (used by docker-compose):
 * SWARMTUNE_DATA_DIR, SWARMTUNE_LISTEN, SWARMTUNE_BOOTSTRAP (comma-separated), SWARMTUNE_API_HOST,
 * SWARMTUNE_API_PORT, SWARMTUNE_LOCAL_TESTBED, SWARMTUNE_PUBLISH_HARDWARE; and any key by path with double underscores:
 * SWARMTUNE__net__sync__intervalMs=5000 (values parsed as JSON when they parse).
 */
export function envOverrides (env: NodeJS.ProcessEnv): Json {
  const out: Record<string, Json> = {}
  if (env.SWARMTUNE_DATA_DIR != null) setPath(out, ['dataDir'], env.SWARMTUNE_DATA_DIR)
  if (env.SWARMTUNE_LISTEN != null) setPath(out, ['net', 'listen'], csv(env.SWARMTUNE_LISTEN))
  if (env.SWARMTUNE_BOOTSTRAP != null) setPath(out, ['net', 'bootstrap'], csv(env.SWARMTUNE_BOOTSTRAP))
  if (env.SWARMTUNE_ANNOUNCE != null) setPath(out, ['net', 'announce'], csv(env.SWARMTUNE_ANNOUNCE))
  if (env.SWARMTUNE_API_HOST != null) setPath(out, ['api', 'host'], env.SWARMTUNE_API_HOST)
  if (env.SWARMTUNE_API_PORT != null) setPath(out, ['api', 'port'], parseEnvValue(env.SWARMTUNE_API_PORT))
  if (env.SWARMTUNE_VERIFY_WORKERS != null) setPath(out, ['net', 'verifyWorkers'], parseEnvValue(env.SWARMTUNE_VERIFY_WORKERS))
  if (env.SWARMTUNE_PUBLISH_HARDWARE != null) setPath(out, ['engine', 'publishHardware'], env.SWARMTUNE_PUBLISH_HARDWARE)
  if (env.SWARMTUNE_LOCAL_TESTBED != null) setPath(out, ['net', 'localTestbed'], parseEnvValue(env.SWARMTUNE_LOCAL_TESTBED))
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('SWARMTUNE__') || v == null) continue
    setPath(out, k.slice('SWARMTUNE__'.length).split('__'), parseEnvValue(v))
  }
  return out
}

export interface LoadConfigOptions {
  /** user config file (--config) */
  file?: string
  env?: NodeJS.ProcessEnv
  /** highest precedence: values from CLI flags, as a partial config */
  overrides?: Json
  /** where the default data dir is looked for (tests); process.cwd() and the home dir otherwise */
  cwd?: string
  home?: string
  /** told when the default data dir is an existing ./.swarmtune of an older version */
  onLegacyDataDir?: (dir: string) => void
}

export function loadConfig (opts: LoadConfigOptions = {}): SwarmtuneConfig {
  const root = packageRoot()
  let merged = readJson(join(root, 'config', 'default.json'))
  let fileDir: string | undefined
  if (opts.file != null) {
    const user = readJson(resolve(opts.file))
    if (!isObject(user)) throw new ConfigError('', `config file ${opts.file} must hold a JSON object`)
    merged = deepMerge(merged, user)
    fileDir = dirname(resolve(opts.file))
  }
  const env = opts.env ?? process.env
  merged = deepMerge(merged, envOverrides(env))
  if (opts.overrides != null) merged = deepMerge(merged, opts.overrides)
  checkConfig(merged, join(root, 'config', 'schema.json'))
  const cfg = merged as unknown as SwarmtuneConfig
  if (cfg.dataDir == null) {
    const d = defaultDataDir({ env, cwd: opts.cwd, home: opts.home })
    if (d.legacy) opts.onLegacyDataDir?.(d.dir)
    cfg.dataDir = d.dir
  } else {
    cfg.dataDir = resolve(opts.cwd ?? process.cwd(), cfg.dataDir)
  }
  resolveModelPaths(cfg, fileDir, opts.cwd ?? process.cwd())
  return cfg
}

/**
 * Relative engine.models paths: one from a config file against that file's folder (where the
 * user wrote `./models/x.gguf`), one from env or flag against the current directory. Older
 * configs meant the data dir: that reading is kept when only it names an existing file.
 */
function resolveModelPaths (cfg: SwarmtuneConfig, fileDir: string | undefined, cwd: string): void {
  const fix = (p: string | undefined): string | undefined => {
    if (p == null || isAbsolute(p)) return p
    const mine = resolve(fileDir ?? cwd, p)
    const old = resolve(cfg.dataDir, p)
    return !existsSync(mine) && existsSync(old) ? old : mine
  }
  for (const m of cfg.engine.models) {
    m.path = fix(m.path) as string
    if (m.q8Path != null) m.q8Path = fix(m.q8Path)
    if (m.draftPath != null) m.draftPath = fix(m.draftPath)
  }
}

