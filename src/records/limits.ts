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

/**
 * The smallest non-zero value of a result metric a measurement can produce (issue #18): no
 * inference step of even one token takes under a microsecond, and no rate falls below one token
 * in ~12 days (the 24 h wall ceiling with one token gives 1.2e-5 tok/s). Zero stays allowed (a
 * failed run, a prompt-only workload, an importer that does not know the value). Our own writers
 * round durations and rates to 1e-3 (serving) or measure them (bench), so they never go below.
 * Values under a floor, negative zero and subnormal numbers (under 2^-1022, e.g. 5e-324) are
 * refused as E_IMPLAUSIBLE_SMALL.
 */
export const FLOORS = {
  outputTokensPerSecond: 1e-6,
  totalTokensPerSecond: 1e-6,
  wallMs: 1e-3,
  ttftMsP50: 1e-3,
  ttftMsP95: 1e-3,
  tpotMs: 1e-3,
  peakRssMiB: 1e-3
} as const

/** The smallest normal double (2^-1022): anything non-zero below it is subnormal. */
export const MIN_NORMAL = 2.2250738585072014e-308

export const MAX_STRING = 256
export const MAX_MAP_ENTRIES = 64
export const MAX_GPUS = 16
