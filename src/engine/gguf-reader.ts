import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { SwarmtuneError } from '../util/errors.js'
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufType, ggmlTypeBytes } from './gguf-format.js'

/**
 * GGUF header reader: magic, version, KV metadata and tensor infos (not the tensor data). Used to
 * build the model descriptor and to validate a model file before node-llama-cpp sees it, so a
 * bad path gives a coded error naming the file instead of a native crash or a vague message.
 */

export class ModelFileError extends SwarmtuneError {
  readonly file: string
  constructor (code: 'E_MODEL_NOT_FOUND' | 'E_MODEL_TRUNCATED' | 'E_MODEL_NOT_GGUF', file: string, detail: string) {
    super(code, `${file}: ${detail}`)
    this.file = file
  }
}

export type GgufScalar = number | bigint | boolean | string
export type GgufKvValue = GgufScalar | GgufScalar[]

export interface GgufTensorInfo {
  name: string
  ne: number[]
  type: number
  /** offset from the start of the data section */
  offset: number
  /** bytes, when the type is known */
  bytes?: number
}

export interface GgufHeader {
  file: string
  version: number
  fileSize: number
  kv: Map<string, GgufKvValue>
  tensors: GgufTensorInfo[]
  alignment: number
  /** absolute offset of the data section */
  dataOffset: number
}

// Sanity bounds: a corrupt count must not make us allocate gigabytes.
const MAX_TENSORS = 1_000_000
const MAX_KVS = 100_000
const MAX_STRING = 64 * 1024 * 1024
const MAX_ARRAY = 50_000_000

class EofError extends Error {}

/** Buffered cursor over a file descriptor: reads more as the parse needs it. */
class Cursor {
  private buf = Buffer.alloc(0)
  private bufStart = 0
  pos = 0
  constructor (private readonly fd: number, readonly size: number) {}

  private ensure (n: number): void {
    const end = this.pos + n
    if (end > this.size) throw new EofError()
    if (end <= this.bufStart + this.buf.length && this.pos >= this.bufStart) return
    const want = Math.max(n, 1 << 20)
    const len = Math.min(want, this.size - this.pos)
    const b = Buffer.allocUnsafe(len)
    let got = 0
    while (got < len) {
      const r = readSync(this.fd, b, got, len - got, this.pos + got)
      if (r === 0) break
      got += r
    }
    if (got < n) throw new EofError()
    this.buf = b.subarray(0, got)
    this.bufStart = this.pos
  }

  private take (n: number): Buffer {
    this.ensure(n)
    const o = this.pos - this.bufStart
    this.pos += n
    return this.buf.subarray(o, o + n)
  }

  u8 (): number { return this.take(1)[0] }
  i8 (): number { return this.take(1).readInt8(0) }
  u16 (): number { return this.take(2).readUInt16LE(0) }
  i16 (): number { return this.take(2).readInt16LE(0) }
  u32 (): number { return this.take(4).readUInt32LE(0) }
  i32 (): number { return this.take(4).readInt32LE(0) }
  f32 (): number { return this.take(4).readFloatLE(0) }
  f64 (): number { return this.take(8).readDoubleLE(0) }
  u64big (): bigint { return this.take(8).readBigUInt64LE(0) }
  i64big (): bigint { return this.take(8).readBigInt64LE(0) }
  u64 (): number {
    const v = this.u64big()
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('u64 value out of range')
    return Number(v)
  }

  str (): string {
    const n = this.u64()
    if (n > MAX_STRING) throw new RangeError(`string of ${n} bytes`)
    return this.take(n).toString('utf8')
  }
}

function readValue (c: Cursor, type: number): GgufScalar {
  switch (type) {
    case GgufType.UINT8: return c.u8()
    case GgufType.INT8: return c.i8()
    case GgufType.UINT16: return c.u16()
    case GgufType.INT16: return c.i16()
    case GgufType.UINT32: return c.u32()
    case GgufType.INT32: return c.i32()
    case GgufType.FLOAT32: return c.f32()
    case GgufType.BOOL: return c.u8() !== 0
    case GgufType.STRING: return c.str()
    case GgufType.UINT64: { const v = c.u64big(); return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v }
    case GgufType.INT64: { const v = c.i64big(); return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v }
    case GgufType.FLOAT64: return c.f64()
    default: throw new RangeError(`unknown GGUF value type ${type}`)
  }
}

/** Read and validate a GGUF header. Errors: E_MODEL_NOT_FOUND, E_MODEL_TRUNCATED, E_MODEL_NOT_GGUF, each naming the file. */
export function readGgufHeader (file: string): GgufHeader {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ModelFileError('E_MODEL_NOT_FOUND', file, code === 'ENOENT' ? 'model file not found' : `cannot open model file (${code ?? String(err)})`)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new ModelFileError('E_MODEL_NOT_FOUND', file, 'not a regular file')
    const c = new Cursor(fd, st.size)
    try {
      if (st.size < 4 || c.u32() !== GGUF_MAGIC) throw new ModelFileError('E_MODEL_NOT_GGUF', file, 'not a GGUF file (bad magic)')
      const version = c.u32()
      if (version < 2 || version > 3) throw new ModelFileError('E_MODEL_NOT_GGUF', file, `unsupported GGUF version ${version}`)
      const nTensors = c.u64()
      const nKv = c.u64()
      if (nTensors > MAX_TENSORS || nKv > MAX_KVS) throw new ModelFileError('E_MODEL_NOT_GGUF', file, `implausible GGUF header (${nTensors} tensors, ${nKv} KVs)`)
      const kv = new Map<string, GgufKvValue>()
      for (let i = 0; i < nKv; i++) {
        const key = c.str()
        const type = c.u32()
        if (type === GgufType.ARRAY) {
          const itemType = c.u32()
          const n = c.u64()
          if (n > MAX_ARRAY) throw new RangeError(`array of ${n} items`)
          const arr: GgufScalar[] = new Array(n)
          for (let j = 0; j < n; j++) arr[j] = readValue(c, itemType)
          kv.set(key, arr)
        } else {
          kv.set(key, readValue(c, type))
        }
      }
      const tensors: GgufTensorInfo[] = []
      for (let i = 0; i < nTensors; i++) {
        const name = c.str()
        const nDims = c.u32()
        if (nDims > 8) throw new RangeError(`tensor ${name} has ${nDims} dims`)
        const ne: number[] = []
        for (let d = 0; d < nDims; d++) ne.push(c.u64())
        const type = c.u32()
        const offset = c.u64()
        const bytes = ggmlTypeBytes(type, ne.reduce((a, b) => a * b, 1))
        tensors.push({ name, ne, type, offset, ...(bytes != null ? { bytes } : {}) })
      }
      const alignRaw = kv.get('general.alignment')
      const alignment = typeof alignRaw === 'number' && alignRaw > 0 ? alignRaw : GGUF_DEFAULT_ALIGNMENT
      const dataOffset = Math.ceil(c.pos / alignment) * alignment
      // Every tensor must lie inside the file: a partial download or an interrupted copy is caught here.
      let needed = dataOffset
      for (const t of tensors) if (t.bytes != null) needed = Math.max(needed, dataOffset + t.offset + t.bytes)
      if (needed > st.size) throw new ModelFileError('E_MODEL_TRUNCATED', file, `truncated: tensor data needs ${needed} bytes, file has ${st.size}`)
      return { file, version, fileSize: st.size, kv, tensors, alignment, dataOffset }
    } catch (err) {
      if (err instanceof ModelFileError) throw err
      if (err instanceof EofError) throw new ModelFileError('E_MODEL_TRUNCATED', file, `truncated GGUF header (file has ${st.size} bytes)`)
      throw new ModelFileError('E_MODEL_NOT_GGUF', file, `malformed GGUF header: ${(err as Error).message}`)
    }
  } finally {
    closeSync(fd)
  }
}

export function kvNumber (h: GgufHeader, key: string): number | undefined {
  const v = h.kv.get(key)
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined
}

export function kvString (h: GgufHeader, key: string): string | undefined {
  const v = h.kv.get(key)
  return typeof v === 'string' ? v : undefined
}
