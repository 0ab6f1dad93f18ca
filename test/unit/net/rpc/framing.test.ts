import { describe, it, expect } from 'vitest'
import { encodeJson, lengthPrefixed, parseJsonObject, remoteError } from '../../../../src/net/rpc/framing.js'

function codeOf (fn: () => unknown): string | undefined {
  try { fn() } catch (err: any) { return err.code }
  return undefined
}

describe('rpc framing', () => {
  it('frames like lpStream', () => {
    expect([...lengthPrefixed(new Uint8Array(3))]).toEqual([3, 0, 0, 0])
    expect([...lengthPrefixed(new Uint8Array(300)).subarray(0, 2)]).toEqual([0xac, 0x02])
  })
  it('accepts only UTF-8 JSON objects as requests', () => {
    expect(parseJsonObject(encodeJson({ a: 1 }))).toEqual({ a: 1 })
    expect(codeOf(() => parseJsonObject(Uint8Array.from([0xff, 0xfe, 0x00])))).toBe('E_REQ_MALFORMED')
    expect(codeOf(() => parseJsonObject(encodeJson([1, 2])))).toBe('E_REQ_MALFORMED')
    expect(codeOf(() => parseJsonObject(encodeJson(null)))).toBe('E_REQ_MALFORMED')
  })
  it('reads error responses, and nothing else, as remote errors', () => {
    expect(remoteError({ error: { code: 'E_BUSY', message: 'busy' } })).toMatchObject({ code: 'E_BUSY', message: 'busy' })
    expect(remoteError({ error: {} })).toMatchObject({ code: 'E_REMOTE', message: 'remote error' })
    expect(remoteError({ ranking: [] })).toBeUndefined()
    expect(remoteError(null)).toBeUndefined()
  })
})
