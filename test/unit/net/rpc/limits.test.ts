import { describe, it, expect } from 'vitest'
import { PeerPenalties } from '../../../../src/net/rpc/limits.js'

describe('peer penalties', () => {
  it('refuses a peer after max penalties for at least one window', () => {
    const p = new PeerPenalties(3, 1000)
    p.add('a', 0); p.add('a', 10)
    expect(p.penalized('a', 20)).toBe(false)
    p.add('a', 30)
    expect(p.penalized('a', 40)).toBe(true)
    expect(p.penalized('b', 40)).toBe(false)
    expect(p.penalized('a', 1500)).toBe(true) // previous window still counts
    expect(p.penalized('a', 3100)).toBe(false)
  })
})
