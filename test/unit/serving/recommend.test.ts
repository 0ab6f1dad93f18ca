import { describe, it, expect } from 'vitest'
import { parseChatBody, parseCompletionBody, streamPieces, contentText } from '../../../src/serving/openai.js'
import { metricsOf, quantizeFeatures, servingWorkloadName } from '../../../src/serving/service.js'
import { parseInferRequest } from '../../../src/net/infer.js'
import { checkResult } from '../../../src/records/validate.js'

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err: any) { return err.code }
  return undefined
}

describe('OpenAI-compatible request parsing', () => {
  it('reads completions (one prompt or a batch) and chat messages (string or text parts)', () => {
    expect(parseCompletionBody({ prompt: 'hi', max_tokens: 5 })).toMatchObject({ prompts: ['hi'], maxTokens: 5, stream: false })
    expect(parseCompletionBody({ prompt: ['a', 'b'], stream: true })).toMatchObject({ prompts: ['a', 'b'], maxTokens: 16, stream: true })
    const chat = parseChatBody({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'text', text: '!' }] }], max_completion_tokens: 3 })
    expect(chat.prompt).toBe('System: Be brief.\nUser: Hi!\nAssistant:')
    expect(chat.maxTokens).toBe(3)
    expect(contentText(null)).toBe('')
  })
  it.each([
    ['no prompt', () => parseCompletionBody({})],
    ['n = 2', () => parseCompletionBody({ prompt: 'x', n: 2 })],
    ['max_tokens 0', () => parseCompletionBody({ prompt: 'x', max_tokens: 0 })],
    ['stream not boolean', () => parseChatBody({ messages: [{ role: 'user', content: 'x' }], stream: 'yes' })],
    ['no messages', () => parseChatBody({ messages: [] })],
    ['image part', () => parseChatBody({ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] })]
  ])('refuses %s with a 400 code', (_n, fn) => {
    expect(codeOf(fn)).toBe('E_REQ_INVALID')
  })
  it('splits streamed text at word boundaries without losing characters', () => {
    const text = 'Hello  swarm, how\nare you?'
    expect(streamPieces(text).join('')).toBe(text)
    expect(streamPieces(text)).toHaveLength(5)
    expect(streamPieces('')).toEqual([])
  })
})

describe('infer request schema', () => {
  it('accepts a batch and refuses bad fields', () => {
    expect(parseInferRequest({ prompts: ['a'], maxTokens: 4, model: 'tiny', objective: 'latency' })).toEqual({ prompts: ['a'], maxTokens: 4, model: 'tiny', objective: 'latency' })
    for (const bad of [{}, { prompts: [] }, { prompts: ['a'], model: '../x' }, { prompts: ['a'], objective: 'fast' }, { prompts: ['a'], budget: -1 }, { prompts: ['a'], extra: 1 }]) {
      expect(codeOf(() => parseInferRequest(bad as Record<string, unknown>))).toBe('E_REQ_INVALID')
    }
  })
})

describe('serving metrics and keys', () => {
  it('turns an engine outcome into schema-valid record metrics', () => {
    const m = metricsOf({ wallMs: 200, requests: [{ promptTokens: 10, outputTokens: 5, ttftMs: 20, latencyMs: 60 }, { promptTokens: 30, outputTokens: 1, ttftMs: 40, latencyMs: 40 }] })
    expect(m).toMatchObject({ ok: true, repeats: 1, promptTokens: 40, outputTokens: 6, outputTokensPerSecond: 30, totalTokensPerSecond: 230, tpotMs: 10 })
    expect(() => checkResult(m)).not.toThrow()
    expect(servingWorkloadName({ requests: 2, promptTokensMean: 20.4, outputTokensMean: 8 })).toBe('serving-n2-p20-o8')
  })
  it('quantizes features so near-identical tasks share a cache key and distinct ones do not', () => {
    const k = (f: Record<string, number>) => JSON.stringify(quantizeFeatures(f))
    expect(k({ a: 100, b: 0 })).toBe(k({ b: 0, a: 101 }))
    expect(k({ a: 100 })).not.toBe(k({ a: 110 }))
  })
})
