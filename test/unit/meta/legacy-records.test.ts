import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { importLlamaBench } from '../../../src/bench/llama-bench-import.js'
import { importLlamaBench as importBefore16 } from '../../helpers/llama-bench-import-before-16.js'
import { HISTORY_READING_VERSION, LEGACY_LLAMA_BENCH_METHOD_RE, kvTypeOfBits, normalizeHistoryBody } from '../../../src/meta/legacy-records.js'
import { buildDataset, logicalModelId } from '../../../src/meta/dataset.js'
import { featureVector } from '../../../src/meta/features.js'
import { synthBodies } from '../../../src/records/index.js'

const fixture = readFileSync(join(import.meta.dirname, '../../fixtures/llama-bench.jsonl'), 'utf8')
const rows = fixture.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l) as Record<string, unknown>)

/** The fixture plus an F16 file of the same model and a row without model_filename. */
function text (): string {
  const f16 = { ...rows[0], model_filename: '/models/Llama-3.2-1B-Instruct-f16.gguf', model_type: 'llama 1B F16', model_size: 2471628864, avg_ns: 3e9, samples_ns: [3e9] }
  const { model_filename: _f, ...noFile } = rows[4]
  return [...rows, f16, noFile].map(r => JSON.stringify(r)).join('\n')
}

describe('records of the llama-bench importer before #16, read now', () => {
  const old = importBefore16(text())
  const cur = importLlamaBench(text())

  it('the old importer wrote the older shape (what this test migrates)', () => {
    expect(old.errors).toEqual([])
    expect(old.bodies.map(b => b.method.id).every(id => LEGACY_LLAMA_BENCH_METHOD_RE.test(id))).toBe(true)
    expect(old.bodies[0].model.name).toBe('Llama-3.2-1B-Instruct-Q4_0')
    expect(old.bodies[0].model.id).not.toBe(cur.bodies[0].model.id)
  })

  it('read as the current importer writes the same rows: logical model, method id, knobs, features', () => {
    expect(cur.errors).toEqual([])
    expect(old.bodies).toHaveLength(cur.bodies.length)
    old.bodies.forEach((o, i) => {
      const n = normalizeHistoryBody(o)
      const c = cur.bodies[i]
      expect(n.model).toEqual({ ...o.model, id: c.model.id, name: c.model.name })
      expect(logicalModelId(n.model)).toBe(logicalModelId(c.model))
      expect(n.method.id).toBe(c.method.id)
      expect(n.method.knobs).toEqual(c.method.knobs)
      expect(featureVector(n, n.method.knobs)).toEqual(featureVector(c, c.method.knobs))
    })
    // the row without model_filename: named `arch size` as the current importer does
    expect(normalizeHistoryBody(old.bodies[old.bodies.length - 1]).model.name).toBe('qwen2 7B')
  })

  it('two quantizations of one model are one task, as in a new import', () => {
    const a = buildDataset(old.bodies)
    const b = buildDataset(cur.bodies)
    expect(a.tasks.map(t => t.key).sort()).toEqual(b.tasks.map(t => t.key).sort())
    expect(a.methods).toEqual(b.methods)
    expect(a.methods.some(m => m.includes('-wF16-') || m.startsWith('llama-bench:wF16'))).toBe(true)
  })

  it('passes every other body through as the same object', () => {
    for (const b of [...cur.bodies, ...synthBodies(5, 3)]) expect(normalizeHistoryBody(b)).toBe(b)
    // a current-looking id of another family is left alone
    const [s] = synthBodies(1, 4)
    const odd = { ...s, method: { ...s.method, id: 'llama-bench:fa1-kv16-b2048-ngl99' } }
    expect(normalizeHistoryBody(odd)).toBe(odd)
  })

  it('maps KV bits back to llama.cpp type names; the reading version is positive', () => {
    expect([16, 32, 8, 4].map(kvTypeOfBits)).toEqual(['f16', 'f32', 'q8_0', 'q4_0'])
    expect(HISTORY_READING_VERSION).toBeGreaterThan(0)
  })
})
