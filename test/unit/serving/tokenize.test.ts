import { describe, it, expect } from 'vitest'
import { CHUNK_CHARS, MAX_PROMPT_CHARS, chunksOf, tokenizeForFeatures, tokenizePrompts } from '../../../src/serving/tokenize.js'

/* Issue #18: prompts are tokenized in slices with yields, and refused at the context without tokenizing all of them. */
const words = (n: number): string => Array.from({ length: n }, (_, i) => `w${i % 97}`).join(' ')

function fakeTokenizer (): { tokenize: (t: string) => number[], chars: () => number, calls: () => number } {
  let chars = 0
  let calls = 0
  return {
    // one token per word: a stand-in for llama.cpp's tokenizer in pure logic
    tokenize: t => { chars += t.length; calls++; return t.split(/\s+/).filter(w => w !== '').map(w => w.length) },
    chars: () => chars,
    calls: () => calls
  }
}

describe('chunksOf', () => {
  it('cuts at whitespace, never over the limit, and loses nothing', () => {
    const text = words(40_000)
    const chunks = chunksOf(text)
    expect(chunks.join('')).toBe(text)
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(CHUNK_CHARS)
    for (const c of chunks.slice(1)) expect(c[0]).toBe(' ')
    expect(chunksOf('x'.repeat(CHUNK_CHARS * 2 + 5)).map(c => c.length)).toEqual([CHUNK_CHARS, CHUNK_CHARS, 5])
  })
})

describe('tokenizePrompts', () => {
  it('gives the whole-prompt tokens of prompts that fit', async () => {
    const t = fakeTokenizer()
    const long = words(5000)
    const out = await tokenizePrompts(t.tokenize, ['a bb ccc', long], 10_000)
    expect(out[0]).toEqual([1, 2, 3])
    expect(out[1]).toEqual(t.tokenize(long))
  })

  it('refuses a prompt over the context after about one context of tokenizing, not all of it', async () => {
    const t = fakeTokenizer()
    const huge = words(60_000) // ~250 K characters, 60 000 tokens
    await expect(tokenizePrompts(t.tokenize, [huge], 2048)).rejects.toMatchObject({ code: 'E_CONTEXT_OVERFLOW' })
    expect(t.chars()).toBeLessThan(2 * CHUNK_CHARS)
  })

  it('lets the event loop run between slices', async () => {
    const t = fakeTokenizer()
    let ticks = 0
    const timer = setInterval(() => { ticks++ }, 0)
    const slow = (s: string): number[] => { const until = Date.now() + 2; while (Date.now() < until); return t.tokenize(s) }
    await tokenizePrompts(slow, [words(30_000)], 1e6)
    clearInterval(timer)
    expect(t.calls()).toBeGreaterThan(3)
    expect(ticks).toBeGreaterThan(0)
  })
})

describe('tokenizeForFeatures', () => {
  it('gives the tokens of a long prompt slice by slice, each slice a separate call, with the same words', async () => {
    const t = fakeTokenizer()
    const long = words(20_000)
    const [short, sliced] = await tokenizeForFeatures(t.tokenize, ['a bb', long])
    expect(short).toEqual([1, 2])
    // one token per word, as whole tokenizing gives: a cut at whitespace splits no word
    expect(sliced).toEqual(fakeTokenizer().tokenize(long))
    expect(t.calls()).toBe(1 + chunksOf(long).length)
  })

  it('refuses prompts over MAX_PROMPT_CHARS before tokenizing anything', async () => {
    const t = fakeTokenizer()
    await expect(tokenizeForFeatures(t.tokenize, ['x'.repeat(MAX_PROMPT_CHARS), 'y'])).rejects.toMatchObject({ code: 'E_PROMPT_TOO_LONG' })
    expect(t.calls()).toBe(0)
  })
})
