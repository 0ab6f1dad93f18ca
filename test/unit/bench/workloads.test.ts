import { describe, it, expect } from 'vitest'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  FAMILIES, generateWorkload, standardWorkloads, parsePrompts, promptsWorkload, importPrompts, defaultParams, type Family
} from '../../../src/bench/workloads.js'
import { checkName } from '../../../src/records/index.js'

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err: any) { return err.code }
  return undefined
}

describe('workload generators', () => {
  it('are deterministic: same family, params and seed give identical prompts', () => {
    for (const f of FAMILIES) {
      const a = generateWorkload(f, { seed: 42 })
      const b = generateWorkload(f, { seed: 42 })
      expect(b).toEqual(a)
      const c = generateWorkload(f, { seed: 43 })
      expect(c.requests.map(r => r.prompt)).not.toEqual(a.requests.map(r => r.prompt))
    }
  })

  it('give different text to different families with one seed', () => {
    const docs = generateWorkload('docqa', { seed: 1 }).requests[0].prompt
    const sums = generateWorkload('summarize', { seed: 1 }).requests[0].prompt
    expect(docs.slice(10, 60)).not.toBe(sums.slice(9, 59))
  })

  it('honour request count, output cap and concurrency, with record-valid names', () => {
    for (const scale of ['tiny', 'default'] as const) {
      for (const w of standardWorkloads(scale)) {
        const p = defaultParams(w.family as Family, scale)
        expect(w.requests).toHaveLength(p.requests)
        expect(w.params.concurrency).toBe(p.concurrency)
        for (const r of w.requests) {
          expect(r.maxTokens).toBeGreaterThanOrEqual(1)
          expect(r.prompt.length).toBeGreaterThan(10)
        }
        expect(() => checkName(w.name, 'name')).not.toThrow()
        expect(() => checkName(w.family, 'family')).not.toThrow()
      }
    }
  })

  it('shape each family as intended', () => {
    const chat = generateWorkload('chat', { requests: 6, concurrency: 2 })
    const sys = chat.requests[0].prompt.split('\nUser:')[0]
    expect(chat.requests.every(r => r.prompt.startsWith(sys))).toBe(true)
    // turn 2 of conversation 0 (request 2) extends turn 1 (request 0)
    expect(chat.requests[2].prompt.startsWith(chat.requests[0].prompt.slice(0, -'Assistant:'.length))).toBe(true)

    const doc = generateWorkload('docqa', { requests: 3 })
    const shared = doc.requests[0].prompt.split('\nQuestion:')[0]
    expect(doc.requests.every(r => r.prompt.startsWith(shared))).toBe(true)
    expect(new Set(doc.requests.map(r => r.prompt)).size).toBe(3)

    const sum = generateWorkload('summarize', { requests: 3 })
    expect(sum.requests[0].prompt.slice(0, 40)).not.toBe(sum.requests[1].prompt.slice(0, 40)) // distinct bodies
    const cls = generateWorkload('classify', { maxTokens: 9 })
    expect(cls.requests.every(r => r.maxTokens >= 1 && r.maxTokens <= 4)).toBe(true)
    const code = generateWorkload('codeedit')
    expect(code.requests[0].prompt).toContain('function ')
    expect(code.requests[0].prompt).toContain('Rewritten code:')
  })

  it('scale the prompt with promptLength', () => {
    const short = generateWorkload('summarize', { promptLength: 50 }).requests[0].prompt.split(' ').length
    const long = generateWorkload('summarize', { promptLength: 400 }).requests[0].prompt.split(' ').length
    expect(long).toBeGreaterThan(short * 5)
  })

  it('refuse bad params and unknown families with codes', () => {
    expect(codeOf(() => generateWorkload('chat', { requests: 0 }))).toBe('E_WORKLOAD_PARAMS')
    expect(codeOf(() => generateWorkload('chat', { concurrency: 1.5 }))).toBe('E_WORKLOAD_PARAMS')
    expect(codeOf(() => generateWorkload('nope' as Family))).toBe('E_WORKLOAD_FAMILY')
    expect(codeOf(() => standardWorkloads('tiny', ['chat', 'poetry']))).toBe('E_WORKLOAD_FAMILY')
  })
})

describe('importPrompts (OpenAI chat JSONL)', () => {
  const good = [
    JSON.stringify({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi there' }], max_tokens: 7 }),
    '',
    JSON.stringify({ messages: [{ role: 'user', content: 'What is two plus two?' }] })
  ].join('\n')

  it('renders messages into prompts, keeps max_tokens, defaults the rest', () => {
    const { requests, errors } = parsePrompts(good, 20)
    expect(errors).toEqual([])
    expect(requests).toEqual([
      { prompt: 'System: Be brief.\nUser: Hi there\nAssistant:', maxTokens: 7 },
      { prompt: 'User: What is two plus two?\nAssistant:', maxTokens: 20 }
    ])
  })

  it('reports each bad line by number and code', () => {
    const text = [
      JSON.stringify({ messages: [{ role: 'user', content: 'ok' }] }),
      '{not json',
      JSON.stringify({ messages: [] }),
      JSON.stringify({ messages: [{ role: 'wizard', content: 'x' }] }),
      JSON.stringify({ messages: [{ role: 'user', content: 3 }] }),
      JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: -1 }),
      '[1,2]'
    ].join('\n')
    const { requests, errors } = parsePrompts(text)
    expect(requests).toHaveLength(1)
    expect(errors.map(e => [e.line, e.code])).toEqual([
      [2, 'E_PROMPTS_JSON'], [3, 'E_PROMPTS_SCHEMA'], [4, 'E_PROMPTS_SCHEMA'],
      [5, 'E_PROMPTS_SCHEMA'], [6, 'E_PROMPTS_SCHEMA'], [7, 'E_PROMPTS_SCHEMA']
    ])
    let err: any
    try { promptsWorkload(text, { label: 'x.jsonl' }) } catch (e) { err = e }
    expect(err.code).toBe('E_PROMPTS_INVALID')
    expect(err.errors).toHaveLength(6)
    expect(err.message).toContain('line 2')
  })

  it('reads a file into an `imported` workload with a stable, valid name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-prompts-'))
    const file = join(dir, 'my prompts.jsonl')
    writeFileSync(file, good)
    const w = importPrompts(file, { concurrency: 2 })
    expect(w.family).toBe('imported')
    expect(w.requests).toHaveLength(2)
    expect(w.params.concurrency).toBe(2)
    expect(importPrompts(file, { concurrency: 2 }).name).toBe(w.name)
    expect(() => checkName(w.name, 'name')).not.toThrow()
    expect(codeOf(() => importPrompts(join(dir, 'missing.jsonl')))).toBe('E_PROMPTS_READ')
    writeFileSync(file, '\n\n')
    expect(codeOf(() => importPrompts(file))).toBe('E_PROMPTS_INVALID')
    rmSync(dir, { recursive: true, force: true })
  })
})
