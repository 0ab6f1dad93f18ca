/**
 * Prompt-lookup drafting (pure): find the most recent earlier occurrence of the longest suffix
 * n-gram of the history (prompt + output so far) and propose the tokens that followed it. Wins
 * when the output repeats the input (code edits, extraction, quoting) or loops.
 */
export function lookupDraft (history: readonly number[], maxTokens: number, maxNgram = 3, minNgram = 1): number[] {
  const len = history.length
  if (maxTokens <= 0 || len < 2) return []
  for (let n = Math.min(maxNgram, len - 1); n >= minNgram; n--) {
    const start = len - n
    // scan backwards from the latest earlier position, so recent context wins
    for (let j = start - 1; j >= 0; j--) {
      let match = true
      for (let t = 0; t < n; t++) {
        if (history[j + t] !== history[start + t]) { match = false; break }
      }
      if (match) {
        const from = j + n
        const draft = history.slice(from, Math.min(from + maxTokens, len))
        if (draft.length > 0) return draft
      }
    }
  }
  return []
}
