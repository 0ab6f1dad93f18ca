/**
 * Documented limits and plausibility ceilings (docs/records.md). A value above a ceiling is not
 * a measurement any current machine can produce, so it is refused as E_IMPLAUSIBLE.
 */
export const MAX_BODY_BYTES = 64 * 1024
/** A record may be at most this far ahead of the receiver's clock. */
export const MAX_CLOCK_SKEW_MS = 10 * 60 * 1000
/** Records claiming to be older than this (2020-01-01) are malformed. */
export const MIN_TIMESTAMP_MS = Date.UTC(2020, 0, 1)

export const CEILINGS = {
  outputTokensPerSecond: 1e6,
  totalTokensPerSecond: 1e7,
  wallMs: 24 * 3600 * 1000,
  ttftMsP50: 24 * 3600 * 1000,
  ttftMsP95: 24 * 3600 * 1000,
  tpotMs: 3600 * 1000,
  peakRssMiB: 16 * 1024 * 1024,
  promptTokens: 1e9,
  outputTokens: 1e9,
  repeats: 10_000,
  spread: 1000
} as const

export const MAX_STRING = 256
export const MAX_MAP_ENTRIES = 64
export const MAX_GPUS = 16
