/**
 * Performance record schema, version 1. One record = one measurement (see docs/records.md for
 * every field with its unit). The body is what gets signed; the id is the SHA-256 of its
 * canonical bytes.
 */
export const RECORD_VERSION = 1
/**
 * Version 2 differs from 1 only in `hardware.backend`: an open name (BACKEND_NAME_RE) instead of
 * the v1 enum. A record is written as v2 only when its backend is outside the v1 enum (e.g.
 * `rocm`), so peers of the previous release keep accepting every record they understand and
 * refuse the others with a clear E_UNKNOWN_VERSION instead of a malformed-field error.
 */
export const RECORD_VERSION_OPEN_BACKEND = 2
export const SUPPORTED_RECORD_VERSIONS: readonly number[] = [RECORD_VERSION, RECORD_VERSION_OPEN_BACKEND]

export type RecordSource = 'benchmark' | 'serving' | 'import' | 'synthetic'
export const RECORD_SOURCES: readonly RecordSource[] = ['benchmark', 'serving', 'import', 'synthetic']

export type Backend = 'cpu' | 'cuda' | 'vulkan' | 'metal' | 'rocm' | 'sycl' | 'other'
/** Backends this release names (feature one-hot columns); any other v2 name reads as `other`. */
export const BACKENDS: readonly Backend[] = ['cpu', 'cuda', 'vulkan', 'metal', 'rocm', 'sycl', 'other']
/** The closed backend enum of record version 1. */
export const V1_BACKENDS: readonly string[] = ['cpu', 'cuda', 'vulkan', 'metal', 'other']
export const BACKEND_NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/

/** The record version a body needs: 1 unless its backend is outside the v1 enum. */
export function recordVersionFor (body: { hardware: { backend: string } }): number {
  return V1_BACKENDS.includes(body.hardware.backend) ? RECORD_VERSION : RECORD_VERSION_OPEN_BACKEND
}

export interface GpuInfo {
  name: string
  /** total video memory, MiB */
  vramMiB: number
}

/** Where a measurement was taken. `id` is a stable hash of the other fields except `threads`. */
export interface HardwareFingerprint {
  id: string
  cpuModel: string
  /** logical CPU cores of the machine */
  cores: number
  /** CPU threads the engine used for this measurement */
  threads: number
  /** total RAM, MiB */
  ramMiB: number
  gpus: GpuInfo[]
  backend: Backend
  /** e.g. "linux-x64" */
  os: string
  /** declared price of the machine, USD per hour (0 when unknown) */
  pricePerHour: number
}

export interface EngineInfo {
  /** e.g. "llama.cpp" */
  name: string
  /** e.g. "node-llama-cpp@3.21.1 b6xxx" */
  version: string
}

/** What model was run, from its GGUF metadata. */
export interface ModelDescriptor {
  /** stable id: hash of architecture numbers + file type + name */
  id: string
  name: string
  architecture: string
  /** number of parameters */
  params: number
  layers: number
  embd: number
  heads: number
  kvHeads: number
  ff: number
  vocab: number
  /** training context length, tokens */
  ctx: number
  /** average bits per weight of the file (16 for F16, 8.5 for Q8_0, ...) */
  weightBits: number
  /** GGUF file type label, e.g. "F16", "Q8_0" */
  fileType: string
}

export interface WorkloadDescriptor {
  /** family: chat | docqa | summarize | codeedit | classify | imported | ... */
  family: string
  /** generator name + parameters, e.g. "chat-n8-p128-o32-c2" */
  name: string
  /** numeric features computed from the actual tokens (see docs/records.md) */
  features: Record<string, number>
}

export interface MethodDescriptor {
  /** catalog id, e.g. "prefix-cache+flash-attn" */
  id: string
  /** engine knob vector: the meta-model learns from these numbers */
  knobs: Record<string, number>
}

export interface ResultMetrics {
  ok: boolean
  /** error code/message when ok = false */
  error?: string
  /** number of measured repeats (after warm-up) */
  repeats: number
  /** median wall time of one repeat of the whole workload, ms */
  wallMs: number
  /** prompt tokens processed per repeat */
  promptTokens: number
  /** output tokens generated per repeat */
  outputTokens: number
  /** output tokens / wall seconds */
  outputTokensPerSecond: number
  /** (prompt + output tokens) / wall seconds */
  totalTokensPerSecond: number
  /** time to first token across requests, ms */
  ttftMsP50: number
  ttftMsP95: number
  /** mean time per output token after the first, ms */
  tpotMs: number
  /** peak resident set size of the process, MiB */
  peakRssMiB: number
  /** relative spread of wall time across repeats: (max - min) / median */
  spread: number
  /** true when a lossless method produced different greedy tokens than the baseline */
  diverged?: boolean
}

export interface RecordBody {
  v: number
  /** author peer id (ed25519, base58btc "12D3KooW...") */
  author: string
  /** per-author sequence number, 1, 2, 3, ... */
  seq: number
  /** creation time, ms since the Unix epoch */
  timestamp: number
  source: RecordSource
  hardware: HardwareFingerprint
  engine: EngineInfo
  model: ModelDescriptor
  workload: WorkloadDescriptor
  method: MethodDescriptor
  result: ResultMetrics
}

/** A body without the fields the signing node fills in (author, seq, timestamp, v). */
export type UnsignedBody = Omit<RecordBody, 'v' | 'author' | 'seq' | 'timestamp'> & { timestamp?: number }

/** A signed record as held in memory: body, its canonical bytes, signature and id. */
export interface SignedRecord {
  /** hex SHA-256 of `bytes` */
  id: string
  body: RecordBody
  /** canonical encoding of `body` */
  bytes: Uint8Array
  /** ed25519 signature over DOMAIN || bytes */
  signature: Uint8Array
}
