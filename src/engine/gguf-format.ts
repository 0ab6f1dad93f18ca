/** GGUF v3 constants and the numeric encodings we write (F16, Q8_0). Pure: no I/O. */

export const GGUF_MAGIC = 0x46554747 // "GGUF" little-endian
export const GGUF_VERSION = 3
export const GGUF_DEFAULT_ALIGNMENT = 32

/** GGUF metadata value types. */
export const GgufType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8,
  ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12
} as const

/** ggml tensor types we write (and can size when reading). */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9, BF16: 30 } as const

/** general.file_type values (llama_ftype). */
export const FileType = { ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q4_0: 2, MOSTLY_Q4_1: 3, MOSTLY_Q8_0: 7, MOSTLY_Q5_0: 8, MOSTLY_Q5_1: 9, MOSTLY_BF16: 32 } as const

const FILE_TYPE_LABELS: Record<number, string> = { 0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1', 32: 'BF16' }
/** Average bits per weight of the bulk of the tensors, by file type. */
const FILE_TYPE_BITS: Record<number, number> = { 0: 32, 1: 16, 2: 4.5, 3: 5, 7: 8.5, 8: 5.5, 9: 6, 32: 16 }

export function fileTypeLabel (ft: number): string {
  return FILE_TYPE_LABELS[ft] ?? `FT${ft}`
}

export function fileTypeBits (ft: number): number {
  return FILE_TYPE_BITS[ft] ?? 0
}

/** [block size in elements, bytes per block] of a ggml type, for the types we know. */
export const GGML_BLOCK: Record<number, [number, number]> = {
  0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 9: [32, 36], 30: [1, 2],
  10: [256, 84], 11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 15: [256, 292]
}

export const QK8_0 = 32

/** Bytes taken by `n` elements of a ggml type; undefined for types we cannot size. */
export function ggmlTypeBytes (type: number, n: number): number | undefined {
  const b = GGML_BLOCK[type]
  if (b == null) return undefined
  return Math.ceil(n / b[0]) * b[1]
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE 754 binary32 → binary16 bits, round to nearest even (as ggml's GGML_FP32_TO_FP16 does). */
export function f32ToF16 (value: number): number {
  f32[0] = value
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0) // Inf / NaN
  let e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00 // overflow → Inf
  if (e <= 0) {
    // subnormal half (or zero)
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const mid = 1 << (shift - 1)
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++ // a carry into the exponent is correct rounding
  return sign | half
}

/** binary16 bits → number. */
export function f16ToF32 (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

/** Encode float values as F16 (little-endian). */
export function encodeF16 (values: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(values.length * 2)
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(f32ToF16(values[i]), i * 2)
  return out
}

export function decodeF16 (buf: Uint8Array, n: number): Float32Array {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(i * 2, true))
  return out
}

/**
 * Q8_0 as ggml's quantize_row_q8_0_ref: blocks of 32 values, scale d = amax / 127 stored as F16,
 * then 32 int8 q = roundf(x / d) (round half away from zero). 34 bytes per block.
 */
export function encodeQ8_0 (values: Float32Array): Buffer {
  if (values.length % QK8_0 !== 0) throw new RangeError(`Q8_0 needs a multiple of ${QK8_0} values, got ${values.length}`)
  const blocks = values.length / QK8_0
  const out = Buffer.allocUnsafe(blocks * 34)
  for (let b = 0; b < blocks; b++) {
    const base = b * QK8_0
    let amax = 0
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(values[base + j])
      if (a > amax) amax = a
    }
    const d = Math.fround(amax / 127)
    const id = d !== 0 ? Math.fround(1 / d) : 0
    const o = b * 34
    out.writeUInt16LE(f32ToF16(d), o)
    for (let j = 0; j < QK8_0; j++) {
      const x = Math.fround(values[base + j] * id)
      const q = x < 0 ? -Math.round(-x) : Math.round(x)
      out.writeInt8(q, o + 2 + j)
    }
  }
  return out
}

export function decodeQ8_0 (buf: Uint8Array, n: number): Float32Array {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const out = new Float32Array(n)
  for (let b = 0; b < n / QK8_0; b++) {
    const o = b * 34
    const d = f16ToF32(dv.getUint16(o, true))
    for (let j = 0; j < QK8_0; j++) out[b * QK8_0 + j] = d * dv.getInt8(o + 2 + j)
  }
  return out
}
