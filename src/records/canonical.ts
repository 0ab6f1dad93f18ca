import { SwarmtuneError } from '../util/errors.js'

/**
 * Canonical JSON (the RFC 8785 subset we need): object keys sorted by UTF-16 code units, no
 * whitespace, numbers in ECMAScript shortest round-trip form, no undefined values. The same value
 * always gives the same bytes, which is what signing and content ids require. We chose this over
 * protobuf because the JSON form of the body (import/export) then *is* the signed form, and the
 * metrics maps (workload features, method knobs) are open-ended.
 */
export function canonicalize (value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'boolean': return value ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(value)) throw new SwarmtuneError('E_NON_FINITE', 'cannot encode a non-finite number')
      return Object.is(value, -0) ? '0' : JSON.stringify(value)
    case 'string': return JSON.stringify(value)
    case 'object': {
      // string concatenation instead of map/join: this runs for every record received (hot path)
      if (Array.isArray(value)) {
        let out = '['
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalize(value[i])
        return out + ']'
      }
      const obj = value as Record<string, unknown>
      const keys = Object.keys(obj).sort()
      let out = '{'
      let first = true
      for (const k of keys) {
        const v = obj[k]
        if (v === undefined) continue
        out += (first ? '"' : ',"') + (SAFE_KEY.test(k) ? k : JSON.stringify(k).slice(1, -1)) + '":' + canonicalize(v)
        first = false
      }
      return out + '}'
    }
    default:
      throw new SwarmtuneError('E_MALFORMED', `cannot encode a value of type ${typeof value}`)
  }
}

// keys made only of these characters need no JSON escaping
const SAFE_KEY = /^[A-Za-z0-9_.:+/-]*$/

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function canonicalBytes (value: unknown): Uint8Array {
  return encoder.encode(canonicalize(value))
}

export function decodeUtf8 (bytes: Uint8Array): string {
  return decoder.decode(bytes)
}
