import { createHash } from 'node:crypto'
import { canonicalize } from './canonical.js'

/** Short stable id of any JSON value: first `hexChars` of SHA-256 of its canonical form. */
export function stableId (value: unknown, hexChars = 16): string {
  return createHash('sha256').update(canonicalize(value)).digest('hex').slice(0, hexChars)
}
