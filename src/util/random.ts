/** Deterministic PRNG (mulberry32): the same seed gives the same stream on every platform. */
export function createRng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randInt (rng: () => number, lo: number, hiInclusive: number): number {
  return lo + Math.floor(rng() * (hiInclusive - lo + 1))
}

export function pick<T> (rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]
}
