import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { isAbsolute, join, resolve } from 'node:path'
import type { ModelDescriptor } from '../records/types.js'
import { SwarmtuneError } from '../util/errors.js'
import { stableId } from '../records/stable-id.js'
import { log } from '../util/log.js'
import { fileTypeBits, fileTypeLabel } from './gguf-format.js'
import { kvNumber, kvString, readGgufHeader, type GgufHeader } from './gguf-reader.js'
import { writeLlamaGguf, type SyntheticModel, type WeightFormat } from './gguf-writer.js'
import type { ModelSpec, EngineConfig } from './types.js'

/**
 * The embedded models: deterministic llama-architecture GGUF files the project writes itself into
 * <dataDir>/models on first use (no weights can or need be downloaded). All share one vocabulary,
 * so `draft` can draft for `small` (and `tiny-draft` for `tiny`). A draft is its target truncated
 * to its first layers (same seed → identical shared tensors), like a LayerSkip self-draft.
 */

const log_ = log('engine')

/** Bump when the generator changes, so stale files are not reused. */
export const EMBEDDED_MODEL_GENERATION = 1

const TINY: SyntheticModel = {
  name: 'tiny',
  arch: { embd: 256, layers: 4, ff: 768, heads: 4, kvHeads: 4, ctx: 2048, ropeBase: 10000, rmsEps: 1e-5 },
  seed: 0x5eed0001,
  weightStd: 0.02,
  embdStd: 0.5,
  residualDecay: 0.7
}
const SMALL: SyntheticModel = {
  name: 'small',
  arch: { embd: 768, layers: 8, ff: 2048, heads: 12, kvHeads: 12, ctx: 2048, ropeBase: 10000, rmsEps: 1e-5 },
  seed: 0x5eed0002,
  weightStd: 0.02,
  embdStd: 0.5,
  residualDecay: 0.7
}

interface EmbeddedFile { model: SyntheticModel, format: WeightFormat }
interface EmbeddedEntry { main: EmbeddedFile, q8?: EmbeddedFile, draft?: string }

const truncated = (m: SyntheticModel, name: string, layers: number): SyntheticModel => ({ ...m, name, arch: { ...m.arch, layers } })
const TINY_DRAFT = truncated(TINY, 'tiny-draft', 1)
const DRAFT = truncated(SMALL, 'draft', 2)

export const EMBEDDED_MODELS: Readonly<Record<string, EmbeddedEntry>> = {
  tiny: { main: { model: TINY, format: 'F32' }, q8: { model: TINY, format: 'Q8_0' }, draft: 'tiny-draft' },
  'tiny-draft': { main: { model: TINY_DRAFT, format: 'F32' }, q8: { model: TINY_DRAFT, format: 'Q8_0' } },
  small: { main: { model: SMALL, format: 'F16' }, q8: { model: SMALL, format: 'Q8_0' }, draft: 'draft' },
  draft: { main: { model: DRAFT, format: 'F16' }, q8: { model: DRAFT, format: 'Q8_0' } }
}

export function embeddedFileName (f: EmbeddedFile): string {
  return `${f.model.name}-g${EMBEDDED_MODEL_GENERATION}-${f.format.toLowerCase()}.gguf`
}

function isValidGguf (path: string): boolean {
  try { readGgufHeader(path); return true } catch { return false }
}

const inflight = new Map<string, Promise<void>>()

/** Write one embedded file unless a valid copy exists (idempotent; atomic via tmp + rename). */
async function ensureFile (dir: string, f: EmbeddedFile): Promise<string> {
  const path = join(dir, embeddedFileName(f))
  let p = inflight.get(path)
  if (p == null) {
    p = (async () => {
      if (isValidGguf(path)) return
      const t0 = Date.now()
      await writeLlamaGguf(path, f.model, f.format)
      log_('wrote embedded model %s in %d ms', path, Date.now() - t0)
    })()
    inflight.set(path, p)
    p.finally(() => inflight.delete(path)).catch(() => {})
  }
  await p
  return path
}

/** Write (if needed) the files of an embedded model and return its spec. */
export async function ensureEmbeddedModel (name: string, dataDir: string): Promise<ModelSpec> {
  const e = EMBEDDED_MODELS[name]
  if (e == null) throw new SwarmtuneError('E_MODEL_UNKNOWN', `unknown embedded model "${name}" (known: ${Object.keys(EMBEDDED_MODELS).join(', ')})`)
  const dir = join(dataDir, 'models')
  await mkdir(dir, { recursive: true })
  const spec: ModelSpec = { name, path: await ensureFile(dir, e.main) }
  if (e.q8 != null) spec.q8Path = await ensureFile(dir, e.q8)
  if (e.draft != null) spec.draftPath = await ensureFile(dir, EMBEDDED_MODELS[e.draft].main)
  return spec
}

/** `<name>.gguf.tmp-<pid>-<ms>`: what writeGguf (gguf-writer.ts) writes before its rename */
const MODEL_TEMP = /\.gguf\.tmp-(\d+)-(\d+)$/

export interface StaleTempsOptions {
  /** files modified since then are left alone (default: this process's start) */
  startedAt?: number
  /** whether a process with this pid runs (default: signal 0) */
  isAlive?: (pid: number) => boolean
}

export interface StaleTemps { removed: number, bytes: number, kept: number }

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it runs, as another user
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Remove the temp files a writer killed mid-way (kill -9 during model generation) left in
 * <dataDir>/models (issue #18). Only files named like ours, only those last modified before this
 * process started, and only when the writer named in the file (its pid) no longer runs; our own
 * pid counts as gone for files older than our start (a container's pid 1 is reused on restart).
 */
export async function removeStaleModelTemps (dataDir: string, opts: StaleTempsOptions = {}): Promise<StaleTemps> {
  const dir = join(dataDir, 'models')
  const startedAt = opts.startedAt ?? performance.timeOrigin
  const isAlive = opts.isAlive ?? pidAlive
  const out: StaleTemps = { removed: 0, bytes: 0, kept: 0 }
  let names: string[]
  try { names = await readdir(dir) } catch { return out }
  for (const name of names) {
    const m = MODEL_TEMP.exec(name)
    if (m == null) continue
    const pid = Number(m[1])
    const path = join(dir, name)
    const st = await stat(path).catch(() => undefined)
    if (st == null || !st.isFile()) continue
    const writerGone = pid === process.pid || !isAlive(pid)
    if (st.mtimeMs >= startedAt || !writerGone) { out.kept++; continue }
    await rm(path, { force: true })
    out.removed++
    out.bytes += st.size
  }
  if (out.removed + out.kept > 0) log_('model temp files in %s: removed %d stale (%d bytes), kept %d of live writers', dir, out.removed, out.bytes, out.kept)
  return out
}

export interface ModelsConfig {
  engine: Pick<EngineConfig, 'models'>
}

/**
 * Name → ModelSpec. A `config.engine.models` entry with that name wins (loadConfig made its paths
 * absolute, against the config file's folder; any still relative here are taken against the
 * data dir); otherwise an embedded model, written on first use. Paths are not validated here:
 * describe()/open() do that with E_MODEL_* errors naming the file.
 */
export async function resolveModel (config: ModelsConfig, name: string, dataDir: string): Promise<ModelSpec> {
  const configured = config.engine.models.find(m => m.name === name)
  if (configured != null) {
    const abs = (p: string): string => isAbsolute(p) ? p : resolve(dataDir, p)
    const spec: ModelSpec = { name, path: abs(configured.path) }
    if (configured.q8Path != null) spec.q8Path = abs(configured.q8Path)
    if (configured.draftPath != null) spec.draftPath = abs(configured.draftPath)
    return spec
  }
  if (EMBEDDED_MODELS[name] != null) return await ensureEmbeddedModel(name, dataDir)
  const known = [...config.engine.models.map(m => m.name), ...Object.keys(EMBEDDED_MODELS)]
  throw new SwarmtuneError('E_MODEL_UNKNOWN', `unknown model "${name}" (known: ${[...new Set(known)].join(', ')})`)
}

/** Names resolveModel accepts. */
export function modelNames (config: ModelsConfig): string[] {
  return [...new Set([...config.engine.models.map(m => m.name), ...Object.keys(EMBEDDED_MODELS)])]
}

/** Descriptor of one GGUF file from its metadata (validates the file: E_MODEL_* naming it). */
export function describeGguf (path: string, name: string): ModelDescriptor {
  return descriptorFromHeader(readGgufHeader(path), name)
}

export function descriptorFromHeader (h: GgufHeader, name: string): ModelDescriptor {
  const arch = kvString(h, 'general.architecture') ?? 'unknown'
  const num = (k: string): number => kvNumber(h, `${arch}.${k}`) ?? 0
  let params = 0
  let bytes = 0
  for (const t of h.tensors) {
    params += t.ne.reduce((a, b) => a * b, 1)
    bytes += t.bytes ?? 0
  }
  const tokens = h.kv.get('tokenizer.ggml.tokens')
  const vocab = num('vocab_size') || (Array.isArray(tokens) ? tokens.length : 0)
  const ft = kvNumber(h, 'general.file_type')
  // Measured bits per weight over the whole file when every tensor type is known; else the label's nominal value.
  const weightBits = params > 0 && h.tensors.every(t => t.bytes != null)
    ? Math.round(bytes * 8 / params * 100) / 100
    : fileTypeBits(ft ?? -1)
  const d: Omit<ModelDescriptor, 'id'> = {
    name,
    architecture: arch,
    params,
    layers: num('block_count'),
    embd: num('embedding_length'),
    heads: num('attention.head_count'),
    kvHeads: num('attention.head_count_kv') || num('attention.head_count'),
    ff: num('feed_forward_length'),
    vocab,
    ctx: num('context_length'),
    weightBits,
    fileType: ft != null ? fileTypeLabel(ft) : 'unknown'
  }
  const id = stableId({ architecture: d.architecture, params: d.params, layers: d.layers, embd: d.embd, heads: d.heads, kvHeads: d.kvHeads, ff: d.ff, vocab: d.vocab, ctx: d.ctx, fileType: d.fileType, name: d.name })
  return { id, ...d }
}
