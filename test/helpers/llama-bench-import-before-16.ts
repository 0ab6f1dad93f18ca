/*
 * TEST FIXTURE: the llama-bench importer as released before issue #16 (src/bench/llama-bench-import.ts
 * at commit f264747^, only the import paths changed). Tests write data dirs in the older shape
 * with it (model = the file, `ggml-model-Q4_K_M`; method ids without the weight type), to check
 * that the current code reads them as it reads new imports (src/meta/legacy-records.ts).
 */
import type { Backend, UnsignedBody } from '../../src/records/types.js'
import { recordVersionFor } from '../../src/records/types.js'
import { validateBody } from '../../src/records/validate.js'
import { errorCode, errorMessage } from '../../src/util/errors.js'
import { stableId } from '../../src/records/stable-id.js'
import { hardwareId } from '../../src/engine/hardware.js'
import { median, spread } from '../../src/util/stats.js'

/**
 * `llama-bench -o jsonl` → unsigned record bodies (source: import). Operators already hold such
 * files; each line is one test (pp = prompt processing, tg = token generation, or both) of one
 * model with one set of llama.cpp parameters. Pure: text in, bodies and per-line errors out.
 *
 * What llama-bench does not measure is recorded as 0 (documented in docs/FEATURES-workload.md):
 * peak RSS, VRAM, model shape fields other than params, and TTFT/TPOT for combined pp+tg tests.
 * llama-bench does not print the core count: `cores` defaults to n_threads unless given.
 */

export interface LlamaBenchLineError {
  /** 1-based line number */
  line: number
  code: string
  message: string
}

export interface LlamaBenchImportOptions {
  /** machine facts llama-bench does not print (the importing operator knows them) */
  cores?: number
  ramMiB?: number
  os?: string
  pricePerHour?: number
}

export interface LlamaBenchImport {
  bodies: UnsignedBody[]
  errors: LlamaBenchLineError[]
}

class LineError extends Error {
  constructor (readonly code: string, message: string) { super(message) }
}

type Row = Record<string, unknown>

function num (row: Row, key: string, opts: { required?: boolean, fallback?: number } = {}): number {
  const v = row[key]
  if (v === undefined || v === null || v === '') {
    if (opts.required === true) throw new LineError('E_LB_FIELD', `missing field "${key}"`)
    return opts.fallback ?? 0
  }
  // the CSV printer quotes numbers; tolerate numeric strings in JSONL too
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : typeof v === 'boolean' ? (v ? 1 : 0) : NaN
  if (!Number.isFinite(n)) throw new LineError('E_LB_FIELD', `field "${key}" is not a number: ${JSON.stringify(v).slice(0, 40)}`)
  return n
}

function text (row: Row, key: string, fallback = ''): string {
  const v = row[key]
  if (v === undefined || v === null) return fallback
  return String(v).slice(0, 200)
}

/** KV cache element type → bits (llama.cpp ggml type names). */
export function kvTypeBits (type: string): number {
  const t = type.toLowerCase()
  if (t === '' || t === 'f16' || t === 'bf16') return 16
  if (t === 'f32') return 32
  const m = /^(?:q|iq)(\d)/.exec(t)
  if (m != null) return Number(m[1])
  throw new LineError('E_LB_FIELD', `unknown KV cache type "${type}"`)
}

export function backendOf (backends: string): Backend {
  const b = backends.toLowerCase()
  if (b.includes('cuda')) return 'cuda'
  if (b.includes('vulkan')) return 'vulkan'
  if (b.includes('metal') || b.includes('mtl')) return 'metal'
  if (b === '' || /^(cpu|blas|cpu,blas|blas,cpu)$/.test(b.replace(/\s+/g, ''))) return 'cpu'
  return 'other'
}

/** flash_attn is a bool in older builds, -1/0/1 (auto/off/on) in newer: auto counts as on. */
function flashAttn (row: Row): number {
  const v = row.flash_attn
  if (v === true || v === 'true') return 1
  if (v === false || v === 'false' || v === undefined || v === null) return 0
  const n = num(row, 'flash_attn')
  return n === 0 ? 0 : 1
}

function baseName (path: string): string {
  const b = path.split(/[\\/]/).pop() ?? path
  return b.replace(/\.gguf$/i, '')
}

/** A name accepted by the record schema ([A-Za-z0-9][A-Za-z0-9+._:/-]{0,127}). */
function safeName (s: string, fallback: string): string {
  const t = s.replace(/[^A-Za-z0-9+._:/-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 128)
  return t === '' ? fallback : t
}

const DUMMY_AUTHOR = '12D3KooW' + 'A'.repeat(44)

export function llamaBenchRowToBody (row: Row, opts: LlamaBenchImportOptions = {}): UnsignedBody {
  const nPrompt = num(row, 'n_prompt', { required: true })
  const nGen = num(row, 'n_gen', { required: true })
  const nDepth = num(row, 'n_depth')
  const avgNs = num(row, 'avg_ns', { required: true })
  if (nPrompt < 0 || nGen < 0 || (nPrompt === 0 && nGen === 0)) throw new LineError('E_LB_EMPTY', 'test has neither prompt nor generated tokens')
  if (avgNs <= 0) throw new LineError('E_LB_FIELD', 'avg_ns must be positive')
  const samples = Array.isArray(row.samples_ns) ? (row.samples_ns as unknown[]).map(Number).filter(x => Number.isFinite(x) && x > 0) : []
  const wallMs = (samples.length > 0 ? median(samples) : avgNs) / 1e6
  const stddevNs = num(row, 'stddev_ns')
  const params = num(row, 'model_n_params', { required: true })
  const size = num(row, 'model_size')
  const threads = Math.max(1, Math.round(num(row, 'n_threads', { fallback: 1 })))

  const modelType = text(row, 'model_type', 'unknown')
  // "qwen2 7B Q4_K - Medium" → architecture "qwen2", file type "Q4_K - Medium"
  const parts = modelType.split(' ')
  const architecture = parts[0] !== '' ? parts[0] : 'unknown'
  const fileType = parts.length > 2 ? parts.slice(2).join(' ') : modelType
  const modelName = baseName(text(row, 'model_filename', modelType))
  const weightBits = params > 0 && size > 0 ? Math.round(size * 8 / params * 100) / 100 : 0

  const gpuInfo = text(row, 'gpu_info')
  const gpus = gpuInfo.trim() === '' ? [] : gpuInfo.split(/,\s*/).filter(g => g !== '').slice(0, 16).map(name => ({ name, vramMiB: 0 }))
  const hwBase = {
    cpuModel: text(row, 'cpu_info', 'unknown CPU') || 'unknown CPU',
    cores: Math.max(threads, Math.round(opts.cores ?? threads)),
    ramMiB: Math.round(opts.ramMiB ?? 0),
    gpus,
    backend: backendOf(text(row, 'backends', 'CPU')),
    os: opts.os ?? 'unknown'
  }

  const batch = Math.round(num(row, 'n_batch', { fallback: 2048 }))
  const fa = flashAttn(row)
  const kv = kvTypeBits(text(row, 'type_k', 'f16'))
  const knobs = { prefixCache: 0, batchSize: batch, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: fa, kvCacheBits: kv, weightBits, threads }

  const test = [nPrompt > 0 ? `pp${nPrompt}` : '', nGen > 0 ? `tg${nGen}` : ''].filter(s => s !== '').join('+') + (nDepth > 0 ? `-d${nDepth}` : '')
  const wallS = wallMs / 1000
  const ttft = nGen === 0 ? wallMs : nPrompt === 0 ? wallMs / nGen : 0
  const tpot = nPrompt === 0 && nGen > 0 ? wallMs / nGen : 0
  const sp = samples.length > 1 ? spread(samples) : stddevNs / avgNs

  const ts = Date.parse(text(row, 'test_time'))
  const body: UnsignedBody = {
    source: 'import',
    hardware: { id: hardwareId(hwBase), ...hwBase, threads, pricePerHour: opts.pricePerHour ?? 0 },
    engine: { name: 'llama.cpp', version: `llama-bench ${text(row, 'build_commit', '?')} b${text(row, 'build_number', '?')}`.slice(0, 200) },
    model: {
      id: stableId({ modelType, params, size, name: modelName }),
      name: modelName,
      architecture,
      params,
      layers: 0,
      embd: 0,
      heads: 0,
      kvHeads: 0,
      ff: 0,
      vocab: 0,
      ctx: 0,
      weightBits,
      fileType
    },
    workload: {
      family: 'llama-bench',
      name: safeName(`llama-bench-${test}`, 'llama-bench'),
      features: {
        requests: 1,
        promptTokensMean: nPrompt,
        promptTokensP50: nPrompt,
        promptTokensP95: nPrompt,
        promptTokensMax: nPrompt,
        totalPromptTokens: nPrompt,
        outputTokensMean: nGen,
        sharedPrefixRatio: 0,
        reusablePrefixRatio: 0,
        ngramOverlap: 0,
        concurrency: 1,
        contextDepth: nDepth
      }
    },
    method: { id: safeName(`llama-bench:fa${fa}-kv${kv}-b${batch}-ngl${Math.round(num(row, 'n_gpu_layers'))}`, 'llama-bench'), knobs },
    result: {
      ok: true,
      repeats: Math.max(1, samples.length),
      wallMs,
      promptTokens: nPrompt,
      outputTokens: nGen,
      outputTokensPerSecond: nGen / wallS,
      totalTokensPerSecond: (nPrompt + nGen) / wallS,
      ttftMsP50: ttft,
      ttftMsP95: ttft,
      tpotMs: tpot,
      peakRssMiB: 0,
      spread: Number.isFinite(sp) ? sp : 0
    }
  }
  if (Number.isFinite(ts) && ts > 0) body.timestamp = ts
  return body
}

/** Parse `llama-bench -o jsonl` text (a `-o json` array is accepted too). */
export function importLlamaBench (input: string, opts: LlamaBenchImportOptions = {}): LlamaBenchImport {
  const bodies: UnsignedBody[] = []
  const errors: LlamaBenchLineError[] = []
  const trimmed = input.trimStart()
  let rows: Array<{ line: number, raw: string | unknown }>
  if (trimmed.startsWith('[')) {
    try {
      rows = (JSON.parse(trimmed) as unknown[]).map((v, i) => ({ line: i + 1, raw: v }))
    } catch (err) {
      return { bodies, errors: [{ line: 1, code: 'E_LB_JSON', message: `not a JSON array: ${errorMessage(err)}` }] }
    }
  } else {
    rows = input.split(/\r?\n/).map((raw, i) => ({ line: i + 1, raw })).filter(r => (r.raw as string).trim() !== '')
  }
  for (const { line, raw } of rows) {
    try {
      let v: unknown = raw
      if (typeof raw === 'string') {
        try { v = JSON.parse(raw) } catch (err) { throw new LineError('E_LB_JSON', `not JSON: ${errorMessage(err)}`) }
      }
      if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new LineError('E_LB_JSON', 'not a JSON object')
      const body = llamaBenchRowToBody(v as Row, opts)
      // the record schema's own checks (plausibility ceilings, names), before anything is signed
      validateBody({ ...body, v: recordVersionFor(body), author: DUMMY_AUTHOR, seq: 1, timestamp: body.timestamp ?? Date.now() })
      bodies.push(body)
    } catch (err) {
      errors.push({ line, code: err instanceof LineError ? err.code : errorCode(err), message: errorMessage(err) })
    }
  }
  return { bodies, errors }
}
