import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GgmlType, decodeF16, decodeQ8_0, encodeQ8_0, f16ToF32, f32ToF16 } from '../../../src/engine/gguf-format.js'
import { readGgufHeader } from '../../../src/engine/gguf-reader.js'
import { encodeTensor, gaussianTensor, llamaParams, writeGguf, writeLlamaGguf, type SyntheticModel } from '../../../src/engine/gguf-writer.js'
import { describeGguf, resolveModel } from '../../../src/engine/models.js'
import { TOKEN_TYPE, embeddedVocabulary } from '../../../src/engine/vocab.js'
import { errorCode } from '../../../src/util/errors.js'

const MODEL: SyntheticModel = {
  name: 'unit',
  arch: { embd: 64, layers: 2, ff: 128, heads: 4, kvHeads: 2, ctx: 256, ropeBase: 10000, rmsEps: 1e-5 },
  seed: 7,
  weightStd: 0.02,
  embdStd: 0.5,
  residualDecay: 0.7
}

describe('f16', () => {
  it('encodes exact values and known bit patterns', () => {
    expect(f32ToF16(0)).toBe(0)
    expect(f32ToF16(-0)).toBe(0x8000)
    expect(f32ToF16(1)).toBe(0x3c00)
    expect(f32ToF16(-2)).toBe(0xc000)
    expect(f32ToF16(65504)).toBe(0x7bff)
    expect(f32ToF16(1e6)).toBe(0x7c00) // overflow → +Inf
    expect(f32ToF16(2 ** -24)).toBe(0x0001) // smallest subnormal
    expect(f32ToF16(Number.NaN) & 0x7c00).toBe(0x7c00)
    expect(f16ToF32(0x3555)).toBeCloseTo(0.33325, 5)
  })

  it('rounds to nearest even', () => {
    // 1 + 2^-11 lies exactly between 1 and 1 + 2^-10: ties to the even mantissa (1)
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00)
    // 1 + 3·2^-11 lies between 1 + 2^-10 (odd) and 1 + 2^-9 (even): rounds up
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02)
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01)
  })

  it('round-trips random values within half-precision error', () => {
    const v = gaussianTensor(1, 'f16', 1000, 3)
    const back = decodeF16(encodeTensor(GgmlType.F16, v), v.length)
    for (let i = 0; i < v.length; i++) expect(Math.abs(back[i] - v[i])).toBeLessThanOrEqual(Math.abs(v[i]) * 2 ** -11 + 2 ** -24)
  })
})

describe('Q8_0', () => {
  it('writes 34-byte blocks: f16 scale amax/127 then int8 values', () => {
    const v = new Float32Array(32)
    for (let i = 0; i < 32; i++) v[i] = (i - 16) / 16 // amax = 1 at i = 0
    const b = encodeQ8_0(v)
    expect(b.length).toBe(34)
    expect(f16ToF32(b.readUInt16LE(0))).toBeCloseTo(1 / 127, 5)
    expect(b.readInt8(2)).toBe(-127)
    expect(b.readInt8(2 + 16)).toBe(0)
    expect(b.readInt8(2 + 24)).toBe(64) // 0.5 * 127 = 63.5 → rounds away from zero
  })

  it('round-trips within one quantization step per block', () => {
    const v = gaussianTensor(2, 'q8', 32 * 20, 0.5)
    const back = decodeQ8_0(encodeQ8_0(v), v.length)
    for (let blk = 0; blk < 20; blk++) {
      let amax = 0
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(v[blk * 32 + j]))
      for (let j = 0; j < 32; j++) expect(Math.abs(back[blk * 32 + j] - v[blk * 32 + j])).toBeLessThanOrEqual(amax / 127 * 0.51 + 1e-3 * amax)
    }
  })

  it('an all-zero block has scale 0', () => {
    const b = encodeQ8_0(new Float32Array(32))
    expect([...b]).toEqual(new Array(34).fill(0))
  })

  it('rejects lengths that are not a multiple of 32', () => {
    expect(() => encodeQ8_0(new Float32Array(33))).toThrow(RangeError)
  })
})

describe('vocabulary', () => {
  it('has specials, 256 byte tokens and prefix-closed pieces', () => {
    const v = embeddedVocabulary()
    expect(v.tokens.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>'])
    expect(v.tokens[3]).toBe('<0x00>')
    expect(v.tokens[258]).toBe('<0xFF>')
    expect(v.types.filter(t => t === TOKEN_TYPE.byte)).toHaveLength(256)
    expect(new Set(v.tokens).size).toBe(v.tokens.length)
    const set = new Set(v.tokens)
    for (let i = 259; i < v.tokens.length; i++) {
      const chars = [...v.tokens[i]]
      for (let k = 1; k < chars.length; k++) expect(set.has(chars.slice(0, k).join(''))).toBe(true)
    }
    expect(set.has('\u2581the')).toBe(true)
  })
})

describe('GGUF writer → reader', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'swarmtune-gguf-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('round-trips KVs of every written type and tensor infos with aligned offsets', async () => {
    const path = join(dir, 'kv.gguf')
    const t1 = new Float32Array([1, 2, 3])
    const t2 = gaussianTensor(3, 't2', 64, 1)
    await writeGguf(path, [
      ['a.u32', { type: 'u32', value: 4000000000 }],
      ['a.i32', { type: 'i32', value: -5 }],
      ['a.f32', { type: 'f32', value: 0.5 }],
      ['a.bool', { type: 'bool', value: true }],
      ['a.str', { type: 'string', value: 'héllo ▁' }],
      ['a.strs', { type: 'array', itemType: 'string', value: ['x', '', 'yz'] }],
      ['a.ints', { type: 'array', itemType: 'i32', value: [1, -2, 3] }]
    ], [
      { name: 'one', ne: [3], type: GgmlType.F32, data: () => t1 },
      { name: 'two', ne: [32, 2], type: GgmlType.Q8_0, data: () => t2 }
    ])
    const h = readGgufHeader(path)
    expect(h.version).toBe(3)
    expect(h.kv.get('a.u32')).toBe(4000000000)
    expect(h.kv.get('a.i32')).toBe(-5)
    expect(h.kv.get('a.f32')).toBe(0.5)
    expect(h.kv.get('a.bool')).toBe(true)
    expect(h.kv.get('a.str')).toBe('héllo ▁')
    expect(h.kv.get('a.strs')).toEqual(['x', '', 'yz'])
    expect(h.kv.get('a.ints')).toEqual([1, -2, 3])
    expect(h.tensors.map(t => [t.name, t.ne, t.type, t.offset, t.bytes])).toEqual([['one', [3], 0, 0, 12], ['two', [32, 2], 8, 32, 68]])
    expect(h.dataOffset % 32).toBe(0)
    const buf = await readFile(path)
    expect(buf.length).toBe(h.dataOffset + 32 + 68 + 28) // data padded to the alignment
    expect(buf.readFloatLE(h.dataOffset + 4)).toBe(2)
    expect(decodeQ8_0(buf.subarray(h.dataOffset + 32, h.dataOffset + 100), 64)[5]).toBeCloseTo(t2[5], 1)
  })

  it('writes a llama model whose metadata the descriptor reads back, deterministically', async () => {
    const a = join(dir, 'a.gguf')
    const b = join(dir, 'b.gguf')
    await writeLlamaGguf(a, MODEL, 'F16')
    await writeLlamaGguf(b, MODEL, 'F16')
    expect((await readFile(a)).equals(await readFile(b))).toBe(true)
    const h = readGgufHeader(a)
    expect(h.kv.get('general.architecture')).toBe('llama')
    expect(h.kv.get('llama.attention.head_count_kv')).toBe(2)
    expect(h.kv.get('tokenizer.ggml.model')).toBe('llama')
    expect((h.kv.get('tokenizer.ggml.tokens') as string[]).length).toBe(embeddedVocabulary().tokens.length)
    expect(h.tensors.find(t => t.name === 'blk.1.attn_k.weight')?.ne).toEqual([64, 32])
    expect(h.tensors.find(t => t.name === 'blk.0.ffn_norm.weight')?.type).toBe(GgmlType.F32)
    const d = describeGguf(a, 'unit')
    expect(d).toMatchObject({ architecture: 'llama', layers: 2, embd: 64, heads: 4, kvHeads: 2, ff: 128, ctx: 256, fileType: 'F16' })
    expect(d.params).toBe(llamaParams(MODEL, d.vocab))
    expect(d.weightBits).toBeGreaterThan(16)
    expect(d.weightBits).toBeLessThan(16.1)
    const q = join(dir, 'q.gguf')
    await writeLlamaGguf(q, MODEL, 'Q8_0')
    const dq = describeGguf(q, 'unit')
    expect(dq.fileType).toBe('Q8_0')
    expect(dq.id).not.toBe(d.id)
    expect(dq.weightBits).toBeGreaterThan(8.5)
    expect(dq.weightBits).toBeLessThan(9)
  })

  it('a truncated copy (data cut or header cut) fails with E_MODEL_TRUNCATED naming the file', async () => {
    const p = join(dir, 'cut.gguf')
    await writeLlamaGguf(p, MODEL, 'F32')
    const h = readGgufHeader(p)
    await truncate(p, h.fileSize - 100)
    expect(() => readGgufHeader(p)).toThrow(expect.objectContaining({ code: 'E_MODEL_TRUNCATED', message: expect.stringContaining(p) }))
    await truncate(p, 1000)
    expect(() => readGgufHeader(p)).toThrow(expect.objectContaining({ code: 'E_MODEL_TRUNCATED' }))
  })

  it('a missing file or a non-GGUF file fails with its code naming the file', async () => {
    const missing = join(dir, 'nope.gguf')
    expect(() => readGgufHeader(missing)).toThrow(expect.objectContaining({ code: 'E_MODEL_NOT_FOUND', message: expect.stringContaining(missing) }))
    const text = join(dir, 'text.gguf')
    await writeFile(text, 'this is not a model\n')
    expect(() => readGgufHeader(text)).toThrow(expect.objectContaining({ code: 'E_MODEL_NOT_GGUF', message: expect.stringContaining(text) }))
    const empty = join(dir, 'empty.gguf')
    await writeFile(empty, '')
    expect(() => readGgufHeader(empty)).toThrow(expect.objectContaining({ code: 'E_MODEL_NOT_GGUF' }))
    expect(() => readGgufHeader(dir)).toThrow(expect.objectContaining({ code: 'E_MODEL_NOT_FOUND' }))
  })

  it('resolveModel: config entries win (relative to the data dir), unknown names are coded errors', async () => {
    const cfg = { engine: { models: [{ name: 'mine', path: 'm.gguf', draftPath: '/abs/d.gguf' }] } }
    expect(await resolveModel(cfg, 'mine', dir)).toEqual({ name: 'mine', path: join(dir, 'm.gguf'), draftPath: '/abs/d.gguf' })
    await expect(resolveModel(cfg, 'nosuch', dir)).rejects.toSatisfy((e: unknown) => errorCode(e) === 'E_MODEL_UNKNOWN')
  })

  it('resolveModel writes the embedded tiny model once (idempotent) and it describes itself', async () => {
    const cfg = { engine: { models: [] } }
    const [s1, s2] = await Promise.all([resolveModel(cfg, 'tiny', dir), resolveModel(cfg, 'tiny', dir)])
    expect(s1).toEqual(s2)
    expect(s1.q8Path).toBeDefined()
    expect(s1.draftPath).toBeDefined()
    const before = (await readFile(s1.path)).length
    await resolveModel(cfg, 'tiny', dir)
    expect((await readFile(s1.path)).length).toBe(before)
    const d = describeGguf(s1.path, 'tiny')
    expect(d.params).toBeGreaterThan(4e6)
    expect(d.params).toBeLessThan(7e6)
    expect(describeGguf(s1.draftPath!, 'tiny-draft').vocab).toBe(d.vocab)
  })
})
