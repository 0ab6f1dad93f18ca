import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { ServingError } from './types.js'

/**
 * Tokenizing prompts without holding the event loop (issue #18). llama.cpp's tokenizer is a
 * synchronous native call on the main thread (about 1.7 ms per KB of prompt on the 2-core
 * machine), so a 256 Ki-character prompt held the loop for ~0.45 s, twice (features here, then
 * the engine), only to be refused for overflowing the context.
 *
 * A prompt up to CHUNK_CHARS is tokenized whole (exact). A longer one is first counted in chunks
 * cut at whitespace, with a yield to the loop between chunks, and refused with
 * E_CONTEXT_OVERFLOW as soon as its count passes the context: a prompt too long for the model
 * costs at most one context's worth of tokenizing, in slices. One that fits (a model with a
 * long context) is then tokenized whole, so its tokens are exact; its size is bounded by the
 * context it fits in.
 */
export const CHUNK_CHARS = 16 * 1024

export type Tokenize = (text: string) => number[]

/** Cut `text` into pieces of at most `max` characters, each cut before a whitespace when there is one. */
export function chunksOf (text: string, max = CHUNK_CHARS): string[] {
  const out: string[] = []
  let start = 0
  while (text.length - start > max) {
    let end = start + max
    // the last whitespace in the second half of the window: words stay whole
    const ws = text.slice(start + (max >> 1), end).search(/\s[^\s]*$/)
    if (ws >= 0) end = start + (max >> 1) + ws
    out.push(text.slice(start, end))
    start = end
  }
  out.push(text.slice(start))
  return out
}

/**
 * The tokens of each prompt, yielding to the event loop between slices of work; refuses a prompt
 * whose tokens exceed `contextTokens` (E_CONTEXT_OVERFLOW) without tokenizing all of it.
 */
export async function tokenizePrompts (tokenize: Tokenize, prompts: readonly string[], contextTokens: number): Promise<number[][]> {
  const out: number[][] = []
  for (const [i, p] of prompts.entries()) {
    if (p.length > CHUNK_CHARS) {
      let count = 0
      const chunks = chunksOf(p)
      for (const [k, c] of chunks.entries()) {
        await yieldToLoop()
        count += tokenize(c).length
        // a cut may split what whole tokenizing merges: allow one token per cut
        if (count - k > contextTokens) {
          throw new ServingError('E_CONTEXT_OVERFLOW', `prompt ${i} has more than ${contextTokens} tokens (the model's context) after ${chunks.slice(0, k + 1).reduce((n, x) => n + x.length, 0)} of its ${p.length} characters`)
        }
      }
    }
    await yieldToLoop()
    out.push(tokenize(p))
  }
  return out
}
