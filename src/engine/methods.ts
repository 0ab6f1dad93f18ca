import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SwarmtuneError } from '../util/errors.js'
import { packageRoot } from '../util/paths.js'
import type { Method, MethodKnobs } from './types.js'

/**
 * The acceleration method catalog (config/methods.json): each method is an id plus a numeric knob
 * vector, so the meta-model learns from the knobs rather than from opaque names and can score
 * combinations it has not seen. Validation is strict: a typo in a knob must fail loudly, not run
 * a silently different method.
 */

export const METHOD_KNOB_KEYS: ReadonlyArray<keyof MethodKnobs> = [
  'prefixCache', 'batchSize', 'parallel', 'speculative', 'draftTokens', 'flashAttention', 'kvCacheBits', 'weightBits', 'threads'
]

/** Allowed values of each knob: a list, or an integer range [min, max]. */
const KNOB_RULES: Record<keyof MethodKnobs, number[] | { min: number, max: number }> = {
  prefixCache: [0, 1],
  batchSize: { min: 1, max: 65536 },
  parallel: { min: 1, max: 64 },
  speculative: [0, 1, 2],
  draftTokens: { min: 0, max: 64 },
  flashAttention: [0, 1],
  kvCacheBits: [4, 8, 16],
  weightBits: [8, 16],
  threads: { min: 0, max: 1024 }
}

export const BASELINE_KNOBS: Readonly<MethodKnobs> = {
  prefixCache: 0, batchSize: 512, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: 0, kvCacheBits: 16, weightBits: 16, threads: 0
}

export class MethodError extends SwarmtuneError {}

function fail (where: string, msg: string): never {
  throw new MethodError('E_METHOD_INVALID', `method catalog ${where}: ${msg}`)
}

/** Validate one method object (from JSON or code). */
export function validateMethod (raw: unknown, where = 'method'): Method {
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) fail(where, 'must be an object')
  const o = raw as Record<string, unknown>
  for (const k of Object.keys(o)) if (!['id', 'description', 'lossless', 'knobs'].includes(k)) fail(where, `unknown field "${k}"`)
  if (typeof o.id !== 'string' || !/^[a-z0-9][a-z0-9+._-]{0,63}$/.test(o.id)) fail(where, 'id must match [a-z0-9][a-z0-9+._-]{0,63}')
  const at = `${where} "${o.id}"`
  if (typeof o.description !== 'string') fail(at, 'description must be a string')
  if (typeof o.lossless !== 'boolean') fail(at, 'lossless must be a boolean')
  if (o.knobs == null || typeof o.knobs !== 'object' || Array.isArray(o.knobs)) fail(at, 'knobs must be an object')
  const kr = o.knobs as Record<string, unknown>
  for (const k of Object.keys(kr)) if (!(METHOD_KNOB_KEYS as string[]).includes(k)) fail(at, `unknown knob "${k}"`)
  const knobs = {} as MethodKnobs
  for (const k of METHOD_KNOB_KEYS) {
    const v = kr[k]
    if (typeof v !== 'number' || !Number.isInteger(v)) fail(at, `knob ${k} must be an integer`)
    const rule = KNOB_RULES[k]
    if (Array.isArray(rule) ? !rule.includes(v) : v < rule.min || v > rule.max) {
      fail(at, `knob ${k}=${v} out of range (${Array.isArray(rule) ? rule.join('|') : `${rule.min}..${rule.max}`})`)
    }
    knobs[k] = v
  }
  if (knobs.speculative > 0 && knobs.draftTokens < 1) fail(at, 'speculative decoding needs draftTokens >= 1')
  if (knobs.speculative === 0 && knobs.draftTokens !== 0) fail(at, 'draftTokens must be 0 without speculative decoding')
  return { id: o.id, description: o.description, lossless: o.lossless, knobs }
}

/** Validate a whole catalog: `{ version: 1, methods: [...] }` with unique ids and a `baseline`. */
export function parseMethodCatalog (raw: unknown, source = 'methods.json'): Method[] {
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) fail(source, 'must be an object { version, methods }')
  const o = raw as Record<string, unknown>
  if (o.version !== 1) fail(source, `unsupported version ${String(o.version)}`)
  if (!Array.isArray(o.methods) || o.methods.length === 0) fail(source, 'methods must be a non-empty array')
  const methods = o.methods.map((m, i) => validateMethod(m, `${source} methods[${i}]`))
  const seen = new Set<string>()
  for (const m of methods) {
    if (seen.has(m.id)) fail(source, `duplicate method id "${m.id}"`)
    seen.add(m.id)
  }
  if (!seen.has('baseline')) fail(source, 'a "baseline" method is required (speedups are measured against it)')
  return methods
}

let cached: Method[] | undefined

/** Load config/methods.json (or another file). The default catalog is cached per process. */
export function loadMethods (file?: string): Method[] {
  if (file == null && cached != null) return cached
  const path = file ?? join(packageRoot(), 'config', 'methods.json')
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new MethodError('E_METHOD_INVALID', `cannot read method catalog ${path}: ${(err as Error).message}`)
  }
  const methods = parseMethodCatalog(raw, path)
  if (file == null) cached = methods
  return methods
}

/** Pick methods by id, in the order given; an unknown id is E_METHOD_UNKNOWN listing the known ones. */
export function selectMethods (ids: string[], methods: Method[] = loadMethods()): Method[] {
  return ids.map(id => {
    const m = methods.find(x => x.id === id)
    if (m == null) throw new MethodError('E_METHOD_UNKNOWN', `unknown method "${id}" (known: ${methods.map(x => x.id).join(', ')})`)
    return m
  })
}

export function getMethod (id: string, methods: Method[] = loadMethods()): Method {
  return selectMethods([id], methods)[0]
}

/** The knob vector as a plain record (for MethodDescriptor.knobs in records). */
export function knobRecord (knobs: MethodKnobs): Record<string, number> {
  return Object.fromEntries(METHOD_KNOB_KEYS.map(k => [k, knobs[k]]))
}
