import { createHash } from 'node:crypto'

/*
 * The Merkle tree over an author's log (sync 2.0.0, docs/records.md): RFC 6962 (Certificate
 * Transparency) hashing, leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), the
 * left subtree of n leaves holding the largest power of two below n.
 *
 * A *frontier* is the list of roots of the complete subtrees that cover leaves 1..n, one per set
 * bit of n, largest first (at most 53 hashes). It is all a reader needs to keep per author: the
 * next leaf is appended in O(1) amortized hashes, and the root of 1..n is the right fold of the
 * frontier, because every complete aligned subtree of 1..n is a node of its RFC 6962 tree.
 */
export interface Frontier {
  /** number of leaves covered */
  length: number
  /** complete-subtree roots, largest (leftmost) first; peaks[i] covers 2^k leaves for the i-th set bit of length, from the top */
  peaks: Uint8Array[]
}

const LEAF = Uint8Array.of(0)
const NODE = Uint8Array.of(1)

export const EMPTY_FRONTIER: Frontier = Object.freeze({ length: 0, peaks: [] }) as Frontier

export function leafHash (data: Uint8Array): Uint8Array {
  return createHash('sha256').update(LEAF).update(data).digest()
}

export function nodeHash (left: Uint8Array, right: Uint8Array): Uint8Array {
  return createHash('sha256').update(NODE).update(left).update(right).digest()
}

/** Append one leaf hash; returns a new frontier (the argument is not changed). */
export function appendLeaf (f: Frontier, leaf: Uint8Array): Frontier {
  const peaks = f.peaks.slice()
  let h = leaf
  // merge while the lowest subtree has the same size as the new one: the binary carry of length + 1
  for (let n = f.length; (n & 1) === 1; n = Math.floor(n / 2)) h = nodeHash(peaks.pop() as Uint8Array, h)
  peaks.push(h)
  return { length: f.length + 1, peaks }
}

/** Append in place (hot path of a sync run): `f` is changed. */
export function appendLeafInPlace (f: Frontier, leaf: Uint8Array): void {
  let h = leaf
  for (let n = f.length; (n & 1) === 1; n = Math.floor(n / 2)) h = nodeHash(f.peaks.pop() as Uint8Array, h)
  f.peaks.push(h)
  f.length++
}

/** RFC 6962 root of the leaves the frontier covers; the empty tree's root is SHA-256(""). */
export function frontierRoot (f: Frontier): Uint8Array {
  if (f.peaks.length === 0) return createHash('sha256').digest()
  let h = f.peaks[f.peaks.length - 1]
  for (let i = f.peaks.length - 2; i >= 0; i--) h = nodeHash(f.peaks[i], h)
  return h
}

/** RFC 6962 MTH by its recursive definition (reference for tests and one-off roots). */
export function merkleRoot (leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return createHash('sha256').digest()
  const rec = (lo: number, hi: number): Uint8Array => {
    if (hi - lo === 1) return leaves[lo]
    let k = 1
    while (k * 2 < hi - lo) k *= 2
    return nodeHash(rec(lo, lo + k), rec(lo + k, hi))
  }
  return rec(0, leaves.length)
}

/** Check a frontier's shape: one peak per set bit of length, 32 bytes each. */
export function isFrontier (f: Frontier): boolean {
  if (!Number.isSafeInteger(f.length) || f.length < 0) return false
  let bits = 0
  for (let n = f.length; n > 0; n = Math.floor(n / 2)) bits += n & 1
  return f.peaks.length === bits && f.peaks.every(p => p.length === 32)
}

/** Storage form: "length:hex,hex,…" (empty list for length 0). */
export function encodeFrontier (f: Frontier): string {
  return `${f.length}:${f.peaks.map(p => Buffer.from(p).toString('hex')).join(',')}`
}

/** Parse the storage form; undefined when it is not a well-formed frontier. */
export function decodeFrontier (s: string): Frontier | undefined {
  const m = /^(\d+):([0-9a-f,]*)$/.exec(s)
  if (m == null) return undefined
  const peaks = m[2] === '' ? [] : m[2].split(',').map(h => Uint8Array.from(Buffer.from(h, 'hex')))
  const f = { length: Number(m[1]), peaks }
  return isFrontier(f) ? f : undefined
}

export function toHex (b: Uint8Array): string { return Buffer.from(b).toString('hex') }
