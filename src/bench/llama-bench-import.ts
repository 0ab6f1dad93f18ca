import type { Backend, UnsignedBody } from '../records/types.js'
import { recordVersionFor } from '../records/types.js'
import { validateBody } from '../records/validate.js'
import { errorCode, errorMessage } from '../util/errors.js'
import { stableId } from '../records/stable-id.js'
import { hardwareId } from '../engine/hardware.js'
import { median, spread } from '../util/stats.js'
import { logicalModelName, weightTypeSlug } from '../engine/model-names.js'

export { logicalModelName, weightTypeSlug }

/**
 * `llama-bench -o jsonl` → unsigned record bodies (source: import). Operators already hold such
 * files; each line is one test (pp = prompt processing, tg = token generation, or both) of one
 * model with one set of llama.cpp parameters. Pure: text in, bodies and per-line errors out.
 *
 * What llama-bench does not measure is recorded as 0 (documented in docs/FEATURES-workload.md):
 * peak RSS, VRAM, model shape fields other than params, and TTFT/TPOT for combined pp+tg tests.
 * llama-bench does not print the core count, RAM or VRAM: the operator gives them (host facts,
 * `swarmtune import --host-json`); else `cores` = n_threads, RAM and VRAM 0 (the meta-model then
 * resolves the device names through its spec table).
 *
 * Fidelity (issue 16): the task's model is the logical model (architecture, parameter count and
 * the file name without its quantization suffix), so two quantizations of one model are two
 * settings of one task; the method id names every printed knob that changes speed (weight type,
 * type_k, type_v, flash_attn, n_batch, n_ubatch, n_threads, n_gpu_layers, split_mode, and the
 * build when one machine of the file ran several); knobs are kept per record.
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
  /** replaces `cpu_info` */
  cpuModel?: string
  /** replaces `gpu_info` (names and VRAM) */
  gpus?: Array<{ name: string, vramMiB: number }>
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

/** llama-bench `backends` → record backend; a name not listed here is `other` (never a rejection). */
export function backendOf (backends: string): Backend {
  const b = backends.toLowerCase()
  if (b.includes('cuda')) return 'cuda'
  if (b.includes('rocm') || b.includes('hip')) return 'rocm'
  if (b.includes('vulkan')) return 'vulkan'
  if (b.includes('metal') || b.includes('mtl')) return 'metal'
  if (b.includes('sycl')) return 'sycl'
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
  const modelName = logicalModelName(baseName(text(row, 'model_filename', parts.slice(0, 2).join(' '))))
  const weightBits = params > 0 && size > 0 ? Math.round(size * 8 / params * 100) / 100 : 0

  const gpuInfo = text(row, 'gpu_info')
  const gpus = opts.gpus != null
    ? opts.gpus.slice(0, 16).map(g => ({ name: g.name.slice(0, 200), vramMiB: Math.round(g.vramMiB) }))
    : gpuInfo.trim() === '' ? [] : gpuInfo.split(/,\s*/).filter(g => g !== '').slice(0, 16).map(name => ({ name, vramMiB: 0 }))
  const hwBase = {
    cpuModel: opts.cpuModel ?? (text(row, 'cpu_info', 'unknown CPU') || 'unknown CPU'),
    cores: Math.max(threads, Math.round(opts.cores ?? threads)),
    ramMiB: Math.round(opts.ramMiB ?? 0),
    gpus,
    backend: backendOf(text(row, 'backends', 'CPU')),
    os: opts.os ?? 'unknown'
  }

  const batch = Math.round(num(row, 'n_batch', { fallback: 2048 }))
  const fa = flashAttn(row)
  const typeK = text(row, 'type_k', 'f16')
  const typeV = text(row, 'type_v', typeK)
  const kv = kvTypeBits(typeK)
  const kvV = kvTypeBits(typeV)
  const ubatch = Math.round(num(row, 'n_ubatch', { fallback: 512 }))
  const ngl = Math.round(num(row, 'n_gpu_layers'))
  const build = Math.round(num(row, 'build_number'))
  const splitMode = text(row, 'split_mode', 'layer')
  // every printed setting that changes speed; the build is a knob (not a feature) and joins the
  // id only when one machine of the file ran several builds (importLlamaBench)
  const knobs = { prefixCache: 0, batchSize: batch, parallel: 1, speculative: 0, draftTokens: 0, flashAttention: fa, kvCacheBits: kv, weightBits, threads, ubatchSize: ubatch, kvCacheBitsV: kvV, gpuLayers: ngl, build }
  const methodId = `llama-bench:w${weightTypeSlug(fileType)}-k${typeK}-v${typeV}-fa${fa}-b${batch}-ub${ubatch}-t${threads}-ngl${ngl}` + (splitMode === 'layer' || splitMode === '' ? '' : `-sm${splitMode}`)

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
      id: stableId({ architecture, params, name: modelName }),
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
    method: { id: safeName(methodId, 'llama-bench'), knobs },
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
  const converted: Array<{ line: number, body: UnsignedBody }> = []
  for (const { line, raw } of rows) {
    try {
      let v: unknown = raw
      if (typeof raw === 'string') {
        try { v = JSON.parse(raw) } catch (err) { throw new LineError('E_LB_JSON', `not JSON: ${errorMessage(err)}`) }
      }
      if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new LineError('E_LB_JSON', 'not a JSON object')
      converted.push({ line, body: llamaBenchRowToBody(v as Row, opts) })
    } catch (err) {
      errors.push({ line, code: err instanceof LineError ? err.code : errorCode(err), message: errorMessage(err) })
    }
  }
  // one machine, several builds: the build is part of the setting, else two builds of one
  // setting would be medianed into one cell
  const builds = new Map<string, Set<number>>()
  for (const { body } of converted) {
    let set = builds.get(body.hardware.id)
    if (set == null) builds.set(body.hardware.id, set = new Set())
    set.add(body.method.knobs.build)
  }
  for (const { line, body } of converted) {
    try {
      if ((builds.get(body.hardware.id)?.size ?? 0) > 1) body.method.id = safeName(`${body.method.id}-bld${body.method.knobs.build}`, body.method.id)
      // the record schema's own checks (plausibility ceilings, names), before anything is signed
      validateBody({ ...body, v: recordVersionFor(body), author: DUMMY_AUTHOR, seq: 1, timestamp: body.timestamp ?? Date.now() })
      bodies.push(body)
    } catch (err) {
      errors.push({ line, code: err instanceof LineError ? err.code : errorCode(err), message: errorMessage(err) })
    }
  }
  errors.sort((a, b) => a.line - b.line)
  return { bodies, errors }
}
