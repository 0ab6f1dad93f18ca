import { RECORD_VERSION, RECORD_SOURCES, V1_BACKENDS, BACKEND_NAME_RE, SUPPORTED_RECORD_VERSIONS, type RecordBody, type ResultMetrics } from './types.js'
import { RecordErrorCode as C, RecordValidationError } from './errors.js'
import { CEILINGS, FLOORS, MIN_NORMAL, MAX_CLOCK_SKEW_MS, MAX_GPUS, MAX_MAP_ENTRIES, MAX_STRING, MIN_TIMESTAMP_MS } from './limits.js'

/*
 * Pure validation of a record body (no crypto, no I/O). Each rule is its own small function so
 * it can be unit-tested alone; `validateBody` runs them all and returns the typed body.
 */

const PEER_ID_RE = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/
const HEX_ID_RE = /^[0-9a-f]{16,64}$/
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9+._:/-]{0,127}$/

type Obj = Record<string, unknown>

function fail (code: typeof C[keyof typeof C], message: string, path?: string): never {
  throw new RecordValidationError(code, message, path)
}

function obj (v: unknown, path: string): Obj {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) fail(C.MALFORMED, 'must be an object', path)
  return v as Obj
}

function str (v: unknown, path: string, max = MAX_STRING): string {
  if (typeof v !== 'string') fail(C.MALFORMED, 'must be a string', path)
  if (v.length > max) fail(C.MALFORMED, `longer than ${max} characters`, path)
  return v
}

/**
 * A finite, non-negative number: the shape of every metric and hardware quantity. Neither
 * negative zero nor subnormal (5e-324 is no measurement), and when non-zero at least `floor`.
 */
export function checkMetric (v: unknown, path: string, ceiling?: number, floor?: number): number {
  if (v === undefined || v === null) fail(C.BAD_METRIC, 'missing', path)
  if (typeof v !== 'number') fail(C.BAD_METRIC, 'must be a number', path)
  if (!Number.isFinite(v)) fail(C.BAD_METRIC, 'must be finite', path)
  if (v < 0) fail(C.BAD_METRIC, 'must not be negative', path)
  if (ceiling !== undefined && v > ceiling) fail(C.IMPLAUSIBLE, `${v} exceeds the plausible ceiling ${ceiling}`, path)
  if (Object.is(v, -0)) fail(C.IMPLAUSIBLE_SMALL, 'negative zero', path)
  if (v !== 0 && v < MIN_NORMAL) fail(C.IMPLAUSIBLE_SMALL, `${v} is subnormal`, path)
  if (floor !== undefined && v !== 0 && v < floor) fail(C.IMPLAUSIBLE_SMALL, `${v} is below the plausible floor ${floor} (0 when unknown)`, path)
  return v
}

function int (v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(C.MALFORMED, 'must be an integer', path)
  if (v < min || v > max) fail(C.MALFORMED, `must be within [${min}, ${max}]`, path)
  return v
}

/** Numeric maps (workload features, method knobs): bounded size, finite values, sane keys. */
export function checkNumberMap (v: unknown, path: string): Record<string, number> {
  const o = obj(v, path)
  const keys = Object.keys(o)
  if (keys.length > MAX_MAP_ENTRIES) fail(C.MALFORMED, `more than ${MAX_MAP_ENTRIES} entries`, path)
  for (const k of keys) {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(k)) fail(C.MALFORMED, `bad key ${JSON.stringify(k.slice(0, 64))}`, path)
    const x = o[k]
    if (typeof x !== 'number' || !Number.isFinite(x)) fail(C.BAD_METRIC, 'must be a finite number', `${path}.${k}`)
  }
  return o as Record<string, number>
}

export function checkVersion (v: unknown): void {
  if (!SUPPORTED_RECORD_VERSIONS.includes(v as number)) fail(C.UNKNOWN_VERSION, `unknown record version ${JSON.stringify(v)}`, 'v')
}

export function checkPeerId (v: unknown, path: string): string {
  if (typeof v !== 'string' || !PEER_ID_RE.test(v)) fail(C.MALFORMED_ID, 'not an ed25519 peer id', path)
  return v
}

export function checkHexId (v: unknown, path: string): string {
  if (typeof v !== 'string' || !HEX_ID_RE.test(v)) fail(C.MALFORMED_ID, 'must be 16-64 lowercase hex characters', path)
  return v
}

export function checkName (v: unknown, path: string): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) fail(C.MALFORMED_ID, 'must match [A-Za-z0-9][A-Za-z0-9+._:/-]{0,127}', path)
  return v
}

export function checkTimestamp (v: unknown, now: number): number {
  const t = int(v, 'timestamp', 0, Number.MAX_SAFE_INTEGER)
  if (t < MIN_TIMESTAMP_MS) fail(C.MALFORMED, 'before 2020-01-01', 'timestamp')
  if (t > now + MAX_CLOCK_SKEW_MS) fail(C.FUTURE_TIMESTAMP, `${Math.round((t - now) / 1000)} s in the future`, 'timestamp')
  return t
}

export function checkResult (v: unknown): ResultMetrics {
  const r = obj(v, 'result')
  if (typeof r.ok !== 'boolean') fail(C.MALFORMED, 'must be a boolean', 'result.ok')
  if (r.error !== undefined) str(r.error, 'result.error', 1024)
  if (r.diverged !== undefined && typeof r.diverged !== 'boolean') fail(C.MALFORMED, 'must be a boolean', 'result.diverged')
  for (const k of Object.keys(CEILINGS) as Array<keyof typeof CEILINGS>) {
    checkMetric(r[k], `result.${k}`, CEILINGS[k], (FLOORS as Partial<Record<string, number>>)[k])
  }
  if (r.ok && (r.repeats as number) < 1) fail(C.BAD_METRIC, 'a successful result needs at least one repeat', 'result.repeats')
  if (r.ok && (r.wallMs as number) <= 0) fail(C.BAD_METRIC, 'a successful result needs a positive wall time', 'result.wallMs')
  const known = new Set([...Object.keys(CEILINGS), 'ok', 'error', 'diverged'])
  for (const k of Object.keys(r)) if (!known.has(k)) fail(C.MALFORMED, 'unknown field', `result.${k}`)
  return r as unknown as ResultMetrics
}

function checkHardware (v: unknown, version: number): void {
  const h = obj(v, 'hardware')
  checkHexId(h.id, 'hardware.id')
  str(h.cpuModel, 'hardware.cpuModel')
  int(h.cores, 'hardware.cores', 1, 100_000)
  int(h.threads, 'hardware.threads', 1, 100_000)
  checkMetric(h.ramMiB, 'hardware.ramMiB', 1e9)
  if (!Array.isArray(h.gpus) || h.gpus.length > MAX_GPUS) fail(C.MALFORMED, `must be an array of at most ${MAX_GPUS}`, 'hardware.gpus')
  h.gpus.forEach((g, i) => {
    const go = obj(g, `hardware.gpus.${i}`)
    str(go.name, `hardware.gpus.${i}.name`)
    checkMetric(go.vramMiB, `hardware.gpus.${i}.vramMiB`, 1e8)
  })
  if (version === RECORD_VERSION) {
    if (!V1_BACKENDS.includes(h.backend as string)) fail(C.MALFORMED, `must be one of ${V1_BACKENDS.join(', ')} in a v${RECORD_VERSION} record`, 'hardware.backend')
  } else if (typeof h.backend !== 'string' || !BACKEND_NAME_RE.test(h.backend) || V1_BACKENDS.includes(h.backend)) {
    // a v1 backend in a v2 record would give one measurement two encodings
    fail(C.MALFORMED, 'must be a lowercase backend name outside the v1 enum in a v2 record', 'hardware.backend')
  }
  str(h.os, 'hardware.os')
  checkMetric(h.pricePerHour, 'hardware.pricePerHour', 1e4)
}

function checkModel (v: unknown): void {
  const m = obj(v, 'model')
  checkHexId(m.id, 'model.id')
  str(m.name, 'model.name')
  str(m.architecture, 'model.architecture')
  str(m.fileType, 'model.fileType')
  for (const k of ['params', 'layers', 'embd', 'heads', 'kvHeads', 'ff', 'vocab', 'ctx']) checkMetric(m[k], `model.${k}`, 1e13)
  checkMetric(m.weightBits, 'model.weightBits', 64)
}

/** Validate an untrusted, already-parsed body. Throws RecordValidationError with a code. */
export function validateBody (value: unknown, now = Date.now()): RecordBody {
  const b = obj(value, '')
  checkVersion(b.v)
  checkPeerId(b.author, 'author')
  int(b.seq, 'seq', 1, Number.MAX_SAFE_INTEGER)
  checkTimestamp(b.timestamp, now)
  if (!RECORD_SOURCES.includes(b.source as never)) fail(C.MALFORMED, `must be one of ${RECORD_SOURCES.join(', ')}`, 'source')
  checkHardware(b.hardware, b.v as number)
  const e = obj(b.engine, 'engine')
  str(e.name, 'engine.name')
  str(e.version, 'engine.version')
  checkModel(b.model)
  const w = obj(b.workload, 'workload')
  checkName(w.family, 'workload.family')
  checkName(w.name, 'workload.name')
  checkNumberMap(w.features, 'workload.features')
  const m = obj(b.method, 'method')
  checkName(m.id, 'method.id')
  checkNumberMap(m.knobs, 'method.knobs')
  checkResult(b.result)
  const known = new Set(['v', 'author', 'seq', 'timestamp', 'source', 'hardware', 'engine', 'model', 'workload', 'method', 'result'])
  for (const k of Object.keys(b)) if (!known.has(k)) fail(C.MALFORMED, 'unknown field', k)
  return b as unknown as RecordBody
}
