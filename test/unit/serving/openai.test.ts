import { describe, it, expect } from 'vitest'
import { parseChatBody, parseCompletionBody, streamPieces, contentText } from '../../../src/serving/openai.js'

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
