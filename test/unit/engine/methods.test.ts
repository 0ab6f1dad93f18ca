import { describe, expect, it } from 'vitest'
import { BASELINE_KNOBS, METHOD_KNOB_KEYS, getMethod, knobRecord, loadMethods, parseMethodCatalog, selectMethods, validateMethod } from '../../../src/engine/methods.js'
import { errorCode } from '../../../src/util/errors.js'

const good = { id: 'x', description: 'd', lossless: true, knobs: { ...BASELINE_KNOBS } }
const codeOf = (fn: () => unknown): string => { try { fn(); return 'none' } catch (e) { return errorCode(e) } }

describe('method catalog', () => {
  it('config/methods.json loads and covers the required families', () => {
    const ms = loadMethods()
    const ids = ms.map(m => m.id)
    for (const id of ['baseline', 'prefix-cache', 'chunked-prefill', 'batch-2', 'batch-4', 'spec-lookup', 'spec-draft', 'flash-attn', 'kv-q8', 'kv-q4', 'weights-q8', 'threads-2', 'prefix-cache+flash-attn', 'batch-4+prefix-cache', 'all-on']) {
      expect(ids).toContain(id)
    }
    expect(getMethod('baseline').knobs).toEqual(BASELINE_KNOBS)
    expect(getMethod('spec-draft').knobs.speculative).toBe(2)
    expect(getMethod('chunked-prefill').knobs.batchSize).toBeLessThanOrEqual(32)
    // every knob vector is distinct: two methods with one vector would be indistinguishable to the meta-model
    expect(new Set(ms.map(m => JSON.stringify(knobRecord(m.knobs)))).size).toBe(ms.length)
    // quantization changes the numbers, so those methods cannot promise baseline tokens
    for (const m of ms) if (m.knobs.kvCacheBits < 16 || m.knobs.weightBits < 16) expect(m.lossless).toBe(false)
  })

  it('knobRecord keeps the knob order', () => {
    expect(Object.keys(knobRecord(BASELINE_KNOBS))).toEqual(METHOD_KNOB_KEYS)
  })

  it('rejects bad methods with E_METHOD_INVALID naming the field', () => {
    expect(validateMethod(good).id).toBe('x')
    expect(codeOf(() => validateMethod({ ...good, id: 'Bad Id' }))).toBe('E_METHOD_INVALID')
    expect(codeOf(() => validateMethod({ ...good, knobs: { ...BASELINE_KNOBS, kvCacheBits: 12 } }))).toBe('E_METHOD_INVALID')
    expect(codeOf(() => validateMethod({ ...good, knobs: { ...BASELINE_KNOBS, batchSize: 1.5 } }))).toBe('E_METHOD_INVALID')
    expect(codeOf(() => validateMethod({ ...good, knobs: { ...BASELINE_KNOBS, turbo: 1 } }))).toBe('E_METHOD_INVALID')
    const { threads: _t, ...missing } = BASELINE_KNOBS
    expect(() => validateMethod({ ...good, knobs: missing })).toThrow(/threads/)
    expect(codeOf(() => validateMethod({ ...good, knobs: { ...BASELINE_KNOBS, speculative: 1 } }))).toBe('E_METHOD_INVALID')
    expect(codeOf(() => validateMethod({ ...good, lossless: 'yes' }))).toBe('E_METHOD_INVALID')
  })

  it('rejects catalogs without baseline, with duplicates or a wrong version', () => {
    const base = { ...good, id: 'baseline' }
    expect(parseMethodCatalog({ version: 1, methods: [base, good] })).toHaveLength(2)
    expect(codeOf(() => parseMethodCatalog({ version: 1, methods: [good] }))).toBe('E_METHOD_INVALID')
    expect(codeOf(() => parseMethodCatalog({ version: 1, methods: [base, base] }))).toBe('E_METHOD_INVALID')
    expect(codeOf(() => parseMethodCatalog({ version: 2, methods: [base] }))).toBe('E_METHOD_INVALID')
    expect(codeOf(() => loadMethods('/nonexistent/methods.json'))).toBe('E_METHOD_INVALID')
  })

  it('selectMethods keeps order and names unknown ids', () => {
    expect(selectMethods(['flash-attn', 'baseline']).map(m => m.id)).toEqual(['flash-attn', 'baseline'])
    expect(() => selectMethods(['baseline', 'warp-drive'])).toThrow(expect.objectContaining({ code: 'E_METHOD_UNKNOWN', message: expect.stringContaining('warp-drive') }))
  })
})
