import { describe, it, expect } from 'vitest'
import { parseChatBody, parseCompletionBody, streamPieces, contentText, resolveModelName, listedModels, openAiErrorBody } from '../../../src/serving/openai.js'

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
    ['max_tokens 0', () => parseCompletionBody({ prompt: 'x', max_tokens: 0 })],
    ['stream not boolean', () => parseChatBody({ messages: [{ role: 'user', content: 'x' }], stream: 'yes' })],
    ['no messages', () => parseChatBody({ messages: [] })],
    ['image part', () => parseChatBody({ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] })]
  ])('refuses %s with a 400 code', (_n, fn) => {
    expect(codeOf(fn)).toBe('E_REQ_INVALID')
  })
  it('refuses n = 2 as OpenAI does: unsupported_value naming the param', () => {
    let err: any
    try { parseCompletionBody({ prompt: 'x', n: 2 }) } catch (e) { err = e }
    expect(err.code).toBe('E_UNSUPPORTED_VALUE')
    expect(err.status).toBe(400)
    expect(openAiErrorBody({ status: 400, code: err.code, message: err.message, err })).toEqual({
      error: { message: expect.stringContaining("'n' does not support 2"), type: 'invalid_request_error', param: 'n', code: 'unsupported_value' }
    })
  })
  it('resolves model names: known, alias, default-for-unknown, else 404 model_not_found', () => {
    const base = { defaultModel: 'tiny', knownModels: () => ['tiny', 'small'] }
    expect(resolveModelName(undefined, base)).toBe('tiny')
    expect(resolveModelName('small', base)).toBe('small')
    let err: any
    try { resolveModelName('gpt-4o', base) } catch (e) { err = e }
    expect([err.status, err.code, err.param]).toEqual([404, 'E_UNKNOWN_MODEL', 'model'])
    expect((openAiErrorBody({ status: 404, code: err.code, message: err.message, err }) as any).error.code).toBe('model_not_found')
    const aliased = { ...base, models: { aliases: { 'gpt-4o': 'small', broken: 'nowhere' }, defaultForUnknown: null } }
    expect(resolveModelName('gpt-4o', aliased)).toBe('small')
    expect(() => resolveModelName('broken', aliased)).toThrow(/does not exist/)
    expect(resolveModelName('anything', { ...base, models: { defaultForUnknown: 'small' } })).toBe('small')
    expect(listedModels(aliased)).toEqual(['tiny', 'small', 'gpt-4o'])
  })
  it('splits streamed text at word boundaries without losing characters', () => {
    const text = 'Hello  swarm, how\nare you?'
    expect(streamPieces(text).join('')).toBe(text)
    expect(streamPieces(text)).toHaveLength(5)
    expect(streamPieces('')).toEqual([])
  })
})
