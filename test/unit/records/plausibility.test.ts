import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { canonicalize, createRecord, toWire, verifyWire, synthBodies, validateBody, checkMetric, type RecordBody } from '../../../src/records/index.js'
import { FLOORS, MIN_NORMAL } from '../../../src/records/limits.js'
import { classifyError } from '../../../src/net/ingest.js'
import { metricsOf } from '../../../src/serving/serve.js'
import { aggregate, failedResult } from '../../../src/bench/runner.js'

/* Issue #18: denormal and absurd metrics (wallMs: 5e-324, -0, below a floor) are refused with E_IMPLAUSIBLE_SMALL. */
const now = Date.now()
const author = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

function body (i = 0): RecordBody {
  return { ...synthBodies(i + 1, 3, now)[i], v: 1, author, seq: 1, timestamp: now } as RecordBody
}

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err: any) { return err.code }
  return undefined
}

function withResult (patch: Record<string, number>): RecordBody {
  const b = body()
  return { ...b, result: { ...b.result, ...patch } }
}

describe('record plausibility floors (issue #18)', () => {
  it('refuses the subnormal wallMs of the issue, and subnormals anywhere a metric goes', () => {
    expect(codeOf(() => validateBody(withResult({ wallMs: 5e-324 }), now))).toBe('E_IMPLAUSIBLE_SMALL')
    for (const k of ['outputTokensPerSecond', 'totalTokensPerSecond', 'ttftMsP50', 'ttftMsP95', 'tpotMs', 'peakRssMiB', 'spread', 'promptTokens', 'outputTokens']) {
      expect(codeOf(() => validateBody(withResult({ [k]: MIN_NORMAL / 2 }), now)), k).toBe('E_IMPLAUSIBLE_SMALL')
    }
    const b = body()
    expect(codeOf(() => validateBody({ ...b, hardware: { ...b.hardware, ramMiB: 5e-324 } }, now))).toBe('E_IMPLAUSIBLE_SMALL')
    expect(codeOf(() => checkMetric(Number.MIN_VALUE, 'x'))).toBe('E_IMPLAUSIBLE_SMALL')
    expect(checkMetric(MIN_NORMAL, 'x')).toBe(MIN_NORMAL)
  })

  it('refuses negative zero, which canonical JSON would silently turn into 0', () => {
    expect(codeOf(() => validateBody(withResult({ ttftMsP50: -0 }), now))).toBe('E_IMPLAUSIBLE_SMALL')
    expect(codeOf(() => checkMetric(-0, 'x'))).toBe('E_IMPLAUSIBLE_SMALL')
    expect(checkMetric(0, 'x')).toBe(0)
  })

  it('refuses non-zero durations and rates below their floor, keeps zero and the floor itself', () => {
    for (const [k, floor] of Object.entries(FLOORS)) {
      expect(codeOf(() => validateBody(withResult({ [k]: floor / 10 }), now)), k).toBe('E_IMPLAUSIBLE_SMALL')
      expect(validateBody(withResult({ [k]: floor }), now).result[k as keyof typeof FLOORS]).toBe(floor)
    }
    // zero: unknown or not applicable (importers, prompt-only workloads), except an ok run's wall time
    expect(validateBody(withResult({ ttftMsP50: 0, ttftMsP95: 0, tpotMs: 0, peakRssMiB: 0, outputTokensPerSecond: 0 }), now).result.ttftMsP50).toBe(0)
    expect(codeOf(() => validateBody(withResult({ wallMs: 0 }), now))).toBe('E_BAD_METRIC')
  })

  it('still accepts what current writers produce: synthetic bodies, served batches, bench aggregates, failed runs', () => {
    for (const b of synthBodies(300, 9, now)) expect(() => validateBody({ ...b, v: 1, author, seq: 1, timestamp: now }, now)).not.toThrow()
    const base = body()
    // a served batch faster than the clock can tell, with sub-microsecond first tokens
    const served = metricsOf({ wallMs: 0, requests: [{ promptTokens: 3, outputTokens: 1, ttftMs: 0.0004, latencyMs: 0.0004 }] })
    expect(() => validateBody({ ...base, result: served }, now)).not.toThrow()
    const bench = aggregate([{ wallMs: 0.002, promptTokens: 1, outputTokens: 1, ttfts: [0.001], tpots: [] } as any], 0)
    expect(() => validateBody({ ...base, result: bench }, now)).not.toThrow()
    expect(() => validateBody({ ...base, result: failedResult('E_TIMEOUT: x', 0) }, now)).not.toThrow()
  })

  it('on the wire: a v1 peer may still sign and relay such a record; we refuse it as ignorable, not as proof of malice', async () => {
    const key = await generateKeyPair('Ed25519')
    const a = peerIdFromPrivateKey(key).toString()
    const [unsigned] = synthBodies(1, 4, now)
    const rec = await createRecord(key, a, 1, { ...unsigned, result: { ...unsigned.result, wallMs: 5e-324 } }, now)
    let err: unknown
    try { await verifyWire(toWire(rec), now) } catch (e) { err = e }
    expect(classifyError(err)).toEqual({ kind: 'ignored', code: 'E_IMPLAUSIBLE_SMALL' })
    // -0 cannot reach the wire: canonical bytes carry 0
    expect(canonicalize({ x: -0 })).toBe('{"x":0}')
  })
})
