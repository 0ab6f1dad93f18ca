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

/**
 * Most prompt characters per batch (or recommend query), refused before any tokenizing: below
 * this bound tokenizing goes in slices with yields; 256 Ki characters are more tokens than any
 * context served here holds.
 */
export const MAX_PROMPT_CHARS = 256 * 1024

/** The cheap bound checked before any tokenization (issue #18): E_PROMPT_TOO_LONG over MAX_PROMPT_CHARS. */
export function checkPromptChars (prompts: readonly string[]): void {
  const chars = prompts.reduce((n, p) => n + p.length, 0)
  if (chars > MAX_PROMPT_CHARS) throw new ServingError('E_PROMPT_TOO_LONG', `prompts hold ${chars} characters, over the ${MAX_PROMPT_CHARS} this node tokenizes`)
}

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

/**
 * Tokens of each prompt for workload features, cut in slices with a yield between them: the
 * features need counts, prefixes and n-grams, which a cut at whitespace changes by at most a
 * token or two, so no exact whole pass follows (unlike tokenizePrompts, whose tokens are run).
 */
export async function tokenizeForFeatures (tokenize: Tokenize, prompts: readonly string[]): Promise<number[][]> {
  checkPromptChars(prompts)
  const out: number[][] = []
  for (const p of prompts) {
    if (p.length <= CHUNK_CHARS) {
      out.push(tokenize(p))
      continue
    }
    const tokens: number[] = []
    for (const c of chunksOf(p)) {
      await yieldToLoop()
      for (const t of tokenize(c)) tokens.push(t)
    }
    out.push(tokens)
  }
  return out
}
