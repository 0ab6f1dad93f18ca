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
      if (Array.isArray(value)) return `[${value.map(canonicalize).join(',')}]`
      const obj = value as Record<string, unknown>
      const keys = Object.keys(obj).filter(k => obj[k] !== undefined).sort()
      return `{${keys.map(k => `${JSON.stringify(k)}:${canonicalize(obj[k])}`).join(',')}}`
    }
    default:
      throw new SwarmtuneError('E_MALFORMED', `cannot encode a value of type ${typeof value}`)
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function canonicalBytes (value: unknown): Uint8Array {
  return encoder.encode(canonicalize(value))
}

export function decodeUtf8 (bytes: Uint8Array): string {
  return decoder.decode(bytes)
}
