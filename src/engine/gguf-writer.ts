import { open, rename, rm } from 'node:fs/promises'
import { createRng } from '../util/random.js'
import {
  FileType, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GgmlType, GgufType, encodeQ8_0, f32ToF16, ggmlTypeBytes
} from './gguf-format.js'
import { embeddedVocabulary, type Vocabulary } from './vocab.js'

/**
 * GGUF v3 writer, and the deterministic llama-architecture models built on it. The layout is the
 * one llama.cpp reads (DESIGN.md §4): header, KV metadata, tensor infos, then the data section,
 * with the data start and every tensor aligned to general.alignment.
 */

export type KvValue =
  | { type: 'u32' | 'i32' | 'f32', value: number }
  | { type: 'bool', value: boolean }
  | { type: 'string', value: string }
  | { type: 'array', itemType: 'string', value: string[] }
  | { type: 'array', itemType: 'u32' | 'i32' | 'f32', value: ArrayLike<number> }

export interface TensorSpec {
  name: string
  /** dimensions, ne[0] first (the contiguous one) */
  ne: number[]
  /** GgmlType F32, F16 or Q8_0 */
  type: number
  /** produces the values lazily, so a whole model never sits in memory at once */
  data: () => Float32Array
}

const SCALAR_TYPE = { u32: GgufType.UINT32, i32: GgufType.INT32, f32: GgufType.FLOAT32, string: GgufType.STRING, bool: GgufType.BOOL } as const

class ByteSink {
  private readonly parts: Buffer[] = []
  length = 0
  push (b: Buffer): void { this.parts.push(b); this.length += b.length }
  u32 (v: number): void { const b = Buffer.allocUnsafe(4); b.writeUInt32LE(v >>> 0); this.push(b) }
  i32 (v: number): void { const b = Buffer.allocUnsafe(4); b.writeInt32LE(v | 0); this.push(b) }
  u64 (v: number): void { const b = Buffer.allocUnsafe(8); b.writeBigUInt64LE(BigInt(v)); this.push(b) }
  f32 (v: number): void { const b = Buffer.allocUnsafe(4); b.writeFloatLE(v); this.push(b) }
  str (s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b) }
  pad (alignment: number): void {
    const rem = this.length % alignment
    if (rem !== 0) this.push(Buffer.alloc(alignment - rem))
  }

  concat (): Buffer { return Buffer.concat(this.parts) }
}

function writeScalar (sink: ByteSink, type: 'u32' | 'i32' | 'f32' | 'string' | 'bool', v: number | string | boolean): void {
  switch (type) {
    case 'u32': sink.u32(v as number); break
    case 'i32': sink.i32(v as number); break
    case 'f32': sink.f32(v as number); break
    case 'string': sink.str(v as string); break
    case 'bool': sink.push(Buffer.from([v === true ? 1 : 0])); break
  }
}

function align (n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment
}

export function encodeTensor (type: number, values: Float32Array): Buffer {
  switch (type) {
    case GgmlType.F32: return Buffer.from(values.buffer, values.byteOffset, values.byteLength)
    case GgmlType.F16: {
      const h = new Uint16Array(values.length) // little-endian hosts only (every platform llama.cpp ships for)
      for (let i = 0; i < values.length; i++) h[i] = f32ToF16(values[i])
      return Buffer.from(h.buffer)
    }
    case GgmlType.Q8_0: return encodeQ8_0(values)
    default: throw new RangeError(`cannot encode ggml type ${type}`)
  }
}

/** The header (magic .. tensor infos, padded): its length is where the data section starts. */
export function encodeGgufHeader (kvs: Array<[string, KvValue]>, tensors: TensorSpec[], alignment = GGUF_DEFAULT_ALIGNMENT): { header: Buffer, offsets: number[], dataBytes: number } {
  const sink = new ByteSink()
  sink.u32(GGUF_MAGIC)
  sink.u32(GGUF_VERSION)
  sink.u64(tensors.length)
  sink.u64(kvs.length)
  for (const [key, kv] of kvs) {
    sink.str(key)
    if (kv.type === 'array') {
      sink.u32(GgufType.ARRAY)
      sink.u32(SCALAR_TYPE[kv.itemType])
      sink.u64(kv.value.length)
      if (kv.itemType === 'string') {
        for (const s of kv.value) sink.str(s)
      } else {
        const b = Buffer.allocUnsafe(kv.value.length * 4)
        for (let i = 0; i < kv.value.length; i++) {
          const v = (kv.value as ArrayLike<number>)[i]
          if (kv.itemType === 'f32') b.writeFloatLE(v, i * 4)
          else if (kv.itemType === 'i32') b.writeInt32LE(v, i * 4)
          else b.writeUInt32LE(v, i * 4)
        }
        sink.push(b)
      }
    } else {
      sink.u32(SCALAR_TYPE[kv.type])
      writeScalar(sink, kv.type, kv.value)
    }
  }
  const offsets: number[] = []
  let offset = 0
  for (const t of tensors) {
    const n = t.ne.reduce((a, b) => a * b, 1)
    const bytes = ggmlTypeBytes(t.type, n)
    if (bytes == null) throw new RangeError(`unknown ggml type ${t.type} for ${t.name}`)
    sink.str(t.name)
    sink.u32(t.ne.length)
    for (const d of t.ne) sink.u64(d)
    sink.u32(t.type)
    sink.u64(offset)
    offsets.push(offset)
    offset = align(offset + bytes, alignment)
  }
  sink.pad(alignment)
  return { header: sink.concat(), offsets, dataBytes: offset }
}

/**
 * Write a GGUF file atomically: into `<path>.tmp-<pid>` first, renamed over `path` only once
 * complete, so a crash never leaves a truncated model where a later run would trust it.
 */
export async function writeGguf (path: string, kvs: Array<[string, KvValue]>, tensors: TensorSpec[], alignment = GGUF_DEFAULT_ALIGNMENT): Promise<number> {
  const { header, offsets } = encodeGgufHeader(kvs, tensors, alignment)
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`
  const fh = await open(tmp, 'w')
  try {
    let pos = 0
    await fh.write(header, 0, header.length, pos)
    pos = header.length
    for (let i = 0; i < tensors.length; i++) {
      const target = header.length + offsets[i]
      if (target > pos) { await fh.write(Buffer.alloc(target - pos), 0, target - pos, pos); pos = target }
      const t = tensors[i]
      const values = t.data()
      const n = t.ne.reduce((a, b) => a * b, 1)
      if (values.length !== n) throw new RangeError(`tensor ${t.name}: ${values.length} values for ${n} elements`)
      const bytes = encodeTensor(t.type, values)
      await fh.write(bytes, 0, bytes.length, pos)
      pos += bytes.length
    }
    const end = align(pos - header.length, alignment) + header.length
    if (end > pos) await fh.write(Buffer.alloc(end - pos), 0, end - pos, pos)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await rm(tmp, { force: true })
    throw err
  }
  await fh.close()
  await rename(tmp, path)
  return header.length
}

// ---------------------------------------------------------------------------------------------
// Deterministic llama-architecture models

export interface LlamaArch {
  embd: number
  layers: number
  ff: number
  heads: number
  kvHeads: number
  /** training context length */
  ctx: number
  ropeBase: number
  rmsEps: number
}

export interface SyntheticModel {
  name: string
  arch: LlamaArch
  /** weights are a pure function of (seed, tensor name): a model with fewer layers and the same seed shares its first layers exactly */
  seed: number
  /** std of the projection weights */
  weightStd: number
  /** std of the token embeddings */
  embdStd: number
  /**
   * Layer l's output projections (attn_output, ffn_down) are scaled by residualDecay^l, so the
   * early layers carry most of the signal and a truncated copy (the draft model) agrees with the
   * full model often, as real draft models do with their targets.
   */
  residualDecay: number
}

export type WeightFormat = 'F32' | 'F16' | 'Q8_0'

function hashName (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0 }
  return h
}

/** n samples of N(0, std²), deterministic in (seed, name) (Box-Muller over mulberry32). */
export function gaussianTensor (seed: number, name: string, n: number, std: number): Float32Array {
  const rng = createRng((seed ^ hashName(name)) >>> 0)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    const u1 = rng() || 1e-12
    const u2 = rng()
    const r = Math.sqrt(-2 * Math.log(u1)) * std
    out[i] = r * Math.cos(2 * Math.PI * u2)
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2)
  }
  return out
}

export function llamaTensors (model: SyntheticModel, format: WeightFormat, vocabSize: number): TensorSpec[] {
  const { arch, seed } = model
  const headDim = arch.embd / arch.heads
  const kvDim = headDim * arch.kvHeads
  const wType = format === 'F32' ? GgmlType.F32 : format === 'F16' ? GgmlType.F16 : GgmlType.Q8_0
  const ones = (n: number) => () => new Float32Array(n).fill(1)
  const mat = (name: string, ne0: number, ne1: number, std: number): TensorSpec =>
    ({ name, ne: [ne0, ne1], type: wType, data: () => gaussianTensor(seed, name, ne0 * ne1, std) })
  const tensors: TensorSpec[] = [
    mat('token_embd.weight', arch.embd, vocabSize, model.embdStd),
    { name: 'output_norm.weight', ne: [arch.embd], type: GgmlType.F32, data: ones(arch.embd) },
    mat('output.weight', arch.embd, vocabSize, model.weightStd)
  ]
  for (let l = 0; l < arch.layers; l++) {
    const p = `blk.${l}.`
    const outStd = model.weightStd * model.residualDecay ** l
    tensors.push(
      { name: `${p}attn_norm.weight`, ne: [arch.embd], type: GgmlType.F32, data: ones(arch.embd) },
      mat(`${p}attn_q.weight`, arch.embd, arch.embd, model.weightStd),
      mat(`${p}attn_k.weight`, arch.embd, kvDim, model.weightStd),
      mat(`${p}attn_v.weight`, arch.embd, kvDim, model.weightStd),
      mat(`${p}attn_output.weight`, arch.embd, arch.embd, outStd),
      { name: `${p}ffn_norm.weight`, ne: [arch.embd], type: GgmlType.F32, data: ones(arch.embd) },
      mat(`${p}ffn_gate.weight`, arch.embd, arch.ff, model.weightStd),
      mat(`${p}ffn_up.weight`, arch.embd, arch.ff, model.weightStd),
      mat(`${p}ffn_down.weight`, arch.ff, arch.embd, outStd)
    )
  }
  return tensors
}

export function llamaMetadata (model: SyntheticModel, format: WeightFormat, vocab: Vocabulary): Array<[string, KvValue]> {
  const { arch } = model
  const fileType = format === 'F32' ? FileType.ALL_F32 : format === 'F16' ? FileType.MOSTLY_F16 : FileType.MOSTLY_Q8_0
  return [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: model.name }],
    ['general.alignment', { type: 'u32', value: GGUF_DEFAULT_ALIGNMENT }],
    ['general.file_type', { type: 'u32', value: fileType }],
    ['swarmtune.seed', { type: 'u32', value: model.seed }],
    ['llama.context_length', { type: 'u32', value: arch.ctx }],
    ['llama.embedding_length', { type: 'u32', value: arch.embd }],
    ['llama.block_count', { type: 'u32', value: arch.layers }],
    ['llama.feed_forward_length', { type: 'u32', value: arch.ff }],
    ['llama.attention.head_count', { type: 'u32', value: arch.heads }],
    ['llama.attention.head_count_kv', { type: 'u32', value: arch.kvHeads }],
    ['llama.rope.dimension_count', { type: 'u32', value: arch.embd / arch.heads }],
    ['llama.rope.freq_base', { type: 'f32', value: arch.ropeBase }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: arch.rmsEps }],
    ['llama.vocab_size', { type: 'u32', value: vocab.tokens.length }],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'f32', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: vocab.types }],
    ['tokenizer.ggml.bos_token_id', { type: 'u32', value: vocab.bosId }],
    ['tokenizer.ggml.eos_token_id', { type: 'u32', value: vocab.eosId }],
    ['tokenizer.ggml.unknown_token_id', { type: 'u32', value: vocab.unkId }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }]
  ]
}

/** Write a deterministic llama model as GGUF (atomic). Same inputs → byte-identical file. */
export async function writeLlamaGguf (path: string, model: SyntheticModel, format: WeightFormat, vocab: Vocabulary = embeddedVocabulary()): Promise<void> {
  if (model.arch.embd % model.arch.heads !== 0) throw new RangeError('embd must be a multiple of heads')
  if (format === 'Q8_0' && (model.arch.embd % 32 !== 0 || model.arch.ff % 32 !== 0)) throw new RangeError('Q8_0 needs embd and ff multiples of 32')
  await writeGguf(path, llamaMetadata(model, format, vocab), llamaTensors(model, format, vocab.tokens.length))
}

/** Parameter count of a synthetic model (all tensors). */
export function llamaParams (model: SyntheticModel, vocabSize: number): number {
  return llamaTensors(model, 'F32', vocabSize).reduce((s, t) => s + t.ne.reduce((a, b) => a * b, 1), 0)
}
