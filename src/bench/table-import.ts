import type { Backend, UnsignedBody } from '../records/types.js'
import { recordVersionFor } from '../records/types.js'
import { validateBody } from '../records/validate.js'
import { stableId } from '../records/stable-id.js'
import { hardwareId } from '../engine/hardware.js'
import { SwarmtuneError, errorCode, errorMessage } from '../util/errors.js'

/**
 * Published benchmark tables (CSV) → unsigned record bodies (source: import). A mapping names
 * the columns that describe the hardware, device count, model, workload and method, and the
 * metric; presets cover the LLM-Inference-Bench tables (docs/BENCHMARKS.md). Pure: text in,
 * bodies and per-line errors out; a bad row is reported with its line and code, never stored.
 */
export interface TableMapping {
  hardware: string
  /** device count column (1 when absent) */
  devices?: string
  model: string
  /** prompt length; `outputLength` defaults to the same column ("Input Output Length" N = N in, N out) */
  inputLength: string
  outputLength?: string
  batch?: string
  /** columns whose values together name the method */
  method: string[]
  /** total tokens per second */
  throughput: string
  /** seconds for the whole batch (optional) */
  latencySeconds?: string
  /** value synonyms per column, e.g. { "Framework": { "TRT-LLM": "TensorRT-LLM" } } */
  synonyms?: Record<string, Record<string, string>>
  /**
   * Repair of a known defect: a row with one field more than the header whose column `column`
   * held an unquoted comma; the field and the next are joined again.
   */
  joinExtraComma?: string
  /** method value → knobs the meta-model can read (e.g. weight and KV bits) */
  knobs?: Record<string, Record<string, number>>
}

export const TABLE_PRESETS: Record<string, TableMapping> = {
  'llm-inference-bench-frameworks': {
    hardware: 'Hardware', devices: 'Num of Hardware', model: 'Model', inputLength: 'Input Output Length', batch: 'Batch Size',
    method: ['Framework'], throughput: 'Throughput', latencySeconds: 'Latency'
  },
  'llm-inference-bench-quantization': {
    hardware: 'Hardware', devices: 'Num of Hardware', model: 'Model', inputLength: 'Input Output Length', batch: 'Batch Size',
    method: ['Framework', 'kv_cache_dtype'], throughput: 'throughput', latencySeconds: 'latency', joinExtraComma: 'kv_cache_dtype'
  }
}

export interface TableLineError { line: number, code: string, message: string }
export interface TableImport {
  bodies: UnsignedBody[]
  /** the 1-based file line of each body (bodyLines[i] is bodies[i]'s) */
  bodyLines: number[]
  errors: TableLineError[]
  repaired: number
}

/**
 * What the table does not say about the machines (`swarmtune import --cpu … --gpu NAME:VRAM`):
 * applied to every row; a `gpus` entry whose name equals a row's device (case-insensitive)
 * gives that device its VRAM. Changes the hardware id as it would for a measured machine.
 */
export interface TableHostFacts {
  cpuModel?: string
  cores?: number
  ramMiB?: number
  os?: string
  pricePerHour?: number
  gpus?: Array<{ name: string, vramMiB: number }>
}

export class TableImportError extends SwarmtuneError {}

/** RFC 4180 fields of one line (quotes, doubled quotes); no embedded newlines. */
export function csvFields (line: string): string[] {
  const out: string[] = []
  let cur = ''
  let q = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (q) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++ } else if (c === '"') q = false
      else cur += c
    } else if (c === '"') q = true
    else if (c === ',') { out.push(cur); cur = '' } else cur += c
  }
  out.push(cur)
  return out.map(s => s.trim())
}

function backendOfDevice (name: string): Backend {
  if (/nvidia|\b[ahlt]\d{2,3}\b|gh200/i.test(name)) return 'cuda'
  if (/\bamd\b|mi\d{3}|radeon/i.test(name)) return 'rocm'
  if (/intel|pvc|max\s*1550/i.test(name)) return 'sycl'
  return 'other'
}

/** "meta-llama/Llama-2-70b-hf" → 70e9; "Mixtral-8x7B" → 56e9 (an upper bound); unknown → 0. */
export function paramsFromName (model: string): number {
  const moe = /(\d+)x(\d+(?:\.\d+)?)b/i.exec(model)
  if (moe != null) return Number(moe[1]) * Number(moe[2]) * 1e9
  const m = /(\d+(?:\.\d+)?)b(?![a-z])/i.exec(model.replace(/_/g, '-'))
  return m != null ? Number(m[1]) * 1e9 : 0
}

function slug (s: string): string {
  return s.replace(/\s*=\s*/g, '').replace(/[^A-Za-z0-9+._:-]+/g, '-').replace(/^-+|-+$/g, '')
}

const DUMMY_AUTHOR = '12D3KooW' + 'A'.repeat(44)

function hostOf (device: string, devices: number, host: TableHostFacts): { cpuModel: string, cores: number, ramMiB: number, gpus: Array<{ name: string, vramMiB: number }>, backend: Backend, os: string } {
  const vram = host.gpus?.find(g => g.name.toLowerCase() === device.toLowerCase())?.vramMiB ?? 0
  return {
    cpuModel: host.cpuModel ?? 'unknown CPU',
    cores: host.cores ?? 1,
    ramMiB: host.ramMiB ?? 0,
    gpus: Array.from({ length: Math.min(devices, 16) }, () => ({ name: device, vramMiB: vram })),
    backend: backendOfDevice(device),
    os: host.os ?? 'unknown'
  }
}

// Long by design: one row's checks and its body in the order a reader checks them against the table
export function importTable (text: string, mapping: TableMapping, host: TableHostFacts = {}): TableImport {
  const lines = text.split(/\r?\n/)
  const bodies: UnsignedBody[] = []
  const bodyLines: number[] = []
  const errors: TableLineError[] = []
  let repaired = 0
  const header = csvFields(lines[0] ?? '')
  const want = [mapping.hardware, mapping.model, mapping.inputLength, mapping.throughput, ...mapping.method, mapping.devices, mapping.outputLength, mapping.batch, mapping.latencySeconds]
    .filter((c): c is string => c != null)
  const missing = want.filter(c => !header.includes(c))
  if (missing.length > 0) throw new TableImportError('E_TABLE_MAPPING', `the mapping names columns the header lacks: ${missing.join(', ')} (header: ${header.join(', ')})`)
  const col = (name: string): number => header.indexOf(name)
  const seen = new Set<string>()
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i]
    if (raw.trim() === '') continue
    const line = i + 1
    try {
      let f = csvFields(raw)
      if (f.length === header.length + 1 && mapping.joinExtraComma != null) {
        const j = col(mapping.joinExtraComma)
        f = [...f.slice(0, j), `${f[j]}, ${f[j + 1]}`, ...f.slice(j + 2)]
        repaired++
      }
      if (f.length !== header.length) throw new TableImportError('E_TABLE_FIELDS', `${f.length} fields, the header has ${header.length}`)
      const get = (name: string): string => {
        const v = f[col(name)]
        return mapping.synonyms?.[name]?.[v] ?? v
      }
      const numOf = (name: string, min: number): number => {
        const n = Number(get(name))
        if (get(name) === '' || !Number.isFinite(n) || n < min) throw new TableImportError('E_TABLE_VALUE', `column "${name}" is not a number ≥ ${min}: ${JSON.stringify(get(name)).slice(0, 40)}`)
        return n
      }
      const tps = numOf(mapping.throughput, 0)
      if (tps <= 0) throw new TableImportError('E_TABLE_VALUE', `column "${mapping.throughput}" must be positive`)
      const inLen = Math.round(numOf(mapping.inputLength, 0))
      const outLen = Math.round(mapping.outputLength != null ? numOf(mapping.outputLength, 0) : inLen)
      const batch = Math.round(mapping.batch != null ? numOf(mapping.batch, 1) : 1)
      const devices = Math.round(mapping.devices != null ? numOf(mapping.devices, 1) : 1)
      const device = get(mapping.hardware)
      const model = get(mapping.model)
      if (device === '' || model === '') throw new TableImportError('E_TABLE_VALUE', 'hardware and model must not be empty')
      const methodValue = mapping.method.map(get).join(' ')
      const methodId = slug(`table:${mapping.method.map(get).join('-')}`).slice(0, 128)
      const tokens = (inLen + outLen) * batch
      const wallMs = mapping.latencySeconds != null && Number(get(mapping.latencySeconds)) > 0 ? Number(get(mapping.latencySeconds)) * 1000 : tokens / tps * 1000
      const key = `${device}|${devices}|${model}|${inLen}|${outLen}|${batch}|${methodValue}|${tps}`
      if (seen.has(key)) throw new TableImportError('E_TABLE_DUPLICATE', 'the same row appeared earlier')
      seen.add(key)
      const hwBase = hostOf(device, devices, host)
      const params = paramsFromName(model)
      const body: UnsignedBody = {
        source: 'import',
        hardware: { id: hardwareId(hwBase), ...hwBase, threads: 1, pricePerHour: host.pricePerHour ?? 0 },
        engine: { name: methodValue.slice(0, 200), version: 'published table' },
        model: { id: stableId({ model, params }), name: model.slice(0, 200), architecture: 'unknown', params, layers: 0, embd: 0, heads: 0, kvHeads: 0, ff: 0, vocab: 0, ctx: 0, weightBits: 16, fileType: 'unknown' },
        workload: {
          family: 'imported',
          name: `io${inLen}-o${outLen}-b${batch}`,
          features: { requests: batch, promptTokensMean: inLen, promptTokensP95: inLen, promptTokensMax: inLen, totalPromptTokens: inLen * batch, outputTokensMean: outLen, concurrency: batch }
        },
        // methodCode: a categorical id the forest can split on when a table names methods
        // without knobs (frameworks); values are stable hashes of the method id in [0, 1)
        method: { id: methodId, knobs: { ...(mapping.knobs?.[methodValue] ?? {}), methodCode: parseInt(stableId(methodId, 8), 16) / 2 ** 32 } },
        result: {
          ok: true,
          repeats: 1,
          wallMs,
          promptTokens: inLen * batch,
          outputTokens: outLen * batch,
          outputTokensPerSecond: outLen * batch / (wallMs / 1000),
          totalTokensPerSecond: tps,
          ttftMsP50: 0,
          ttftMsP95: 0,
          tpotMs: 0,
          peakRssMiB: 0,
          spread: 0
        }
      }
      validateBody({ ...body, v: recordVersionFor(body), author: DUMMY_AUTHOR, seq: 1, timestamp: Date.now() })
      bodies.push(body)
      bodyLines.push(line)
    } catch (err) {
      errors.push({ line, code: errorCode(err), message: errorMessage(err) })
    }
  }
  return { bodies, bodyLines, errors, repaired }
}
